# ragpulse: the two commands of the README, and a few more.
#   make run    set up what running needs, build the binary only, and start
#               `ragpulse serve --watch ./inbox` on 127.0.0.1:8103
#   make test   set up everything, build all (release + ASan/UBSan + TSan), and run every test
# scripts/bootstrap installs the packages (idempotent): `bootstrap run` what building and
# running need, `bootstrap test` (the default) that and what the tests need.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_TSAN ?= build-tsan
FUZZ_SECONDS ?= 600
CI_FUZZ_SECONDS ?= 20
JOBS       ?= $(shell nproc)
FUZZ_JOBS  ?= $(JOBS)

.PHONY: all setup setup-run build build-asan build-tsan run test test-unit test-tsan fuzz fuzz-long \
        conformance bench clean format format-check tidy

all: build

setup:
	@bash scripts/bootstrap test

setup-run:
	@bash scripts/bootstrap run

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(BUILD_ASAN)/build.ninja:
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON

$(BUILD_TSAN)/build.ninja:
	cmake -S . -B $(BUILD_TSAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_TSAN=ON

$(BUILD_FUZZ)/build.ninja:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRP_FUZZ=ON

# A build dir `make run` configured has no tests (RP_TESTS=OFF): turned on here.
build: setup $(BUILD)/build.ninja
	@if grep -qs '^RP_TESTS:BOOL=OFF' $(BUILD)/CMakeCache.txt; then cmake -S . -B $(BUILD) -DRP_TESTS=ON; fi
	ninja -C $(BUILD)

build-asan: setup $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

# ThreadSanitizer (no ASan: the two exclude each other), for the tests labelled `tsan`.
# Only what the tsan-labelled tests run (the rp_tsan_set target, tests/CMakeLists.txt).
build-tsan: setup $(BUILD_TSAN)/build.ninja
	ninja -C $(BUILD_TSAN) rp_tsan_set

# The hub and the local-files pipeline in one process: drop files into ./inbox and watch them
# go through in the dashboard; `build/ragpulse search "words"` finds them afterwards. Only
# what running needs is installed and only the binary is built (a fresh build dir is
# configured without the tests, so cmocka is not needed).
run: setup-run
	@test -f $(BUILD)/build.ninja || \
	  cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_TESTS=OFF
	ninja -C $(BUILD) ragpulse
	mkdir -p inbox
	$(BUILD)/ragpulse serve --watch ./inbox

# Every test runs against the sanitizer build: unit, fuzz-corpus replay, integration, one
# CTest entry per file, JOBS at a time (labels and locks in tests/CMakeLists.txt). The release
# build is built too (warnings are errors in all three). Then the `tsan` tests run again under
# ThreadSanitizer, and each fuzz target runs for a short, bounded time, FUZZ_JOBS at a time.
test: build build-asan build-tsan
	$(MAKE) --no-print-directory format-check tidy
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-tsan
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS)

# Layout belongs to clang-format (.clang-format, STYLE.md §1): `make format` applies it,
# `make format-check` (part of make test) fails on any file it would change.
FORMAT_FILES = git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/'
format:
	@$(FORMAT_FILES) | xargs clang-format -i
format-check:
	@$(FORMAT_FILES) | xargs clang-format --dry-run --Werror && echo "format: clean"

# clang-tidy with .clang-tidy (part of make test): no ignored result of a call that can fail.
tidy: build
	@bash scripts/tidy $(BUILD)

test-unit: build-asan
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS) -L unit

# The store worker and libuv's thread pool under ThreadSanitizer. Every process a test starts
# (servers, watchers) writes its reports to one directory instead of a stderr the test may
# never print, and any report there fails the run. tests/tsan.supp names the uninstrumented
# Debian libraries TSan cannot see into, each with its reason.
TSAN_REPORTS = $(CURDIR)/$(BUILD_TSAN)/tsan-reports
test-tsan: build-tsan
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	cd $(BUILD_TSAN) && \
	  TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:second_deadlock_stack=1:log_path=$(TSAN_REPORTS)/tsan \
	  ctest --output-on-failure -j $(JOBS) -L tsan
	@if [ -n "$$(ls -A $(TSAN_REPORTS))" ]; then \
	  cat $(TSAN_REPORTS)/*; echo "ThreadSanitizer reports above (in $(TSAN_REPORTS))"; exit 1; fi

# Each libFuzzer target for FUZZ_SECONDS (default 10 minutes; `make test` gives each 20 s) on a
# scratch copy of its corpus (the committed corpus in tests/fuzz/corpus/ stays small and
# curated), FUZZ_JOBS targets at a time (each is one process on one core, so each still gets
# its FUZZ_SECONDS). A crash fails the run with the reproducer's path: add it to the corpus
# and fix.
fuzz: setup $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)
	@for f in $(BUILD_FUZZ)/tests/fuzz/fuzz_*; do [ -x "$$f" ] && echo "$$f"; done | \
	  xargs -P $(FUZZ_JOBS) -I{} sh -c 'f=$$1; t=$$(basename $$f); \
	    work=$$(mktemp -d); cp tests/fuzz/corpus/$${t#fuzz_}/* $$work/ 2>/dev/null || true; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $$work >$$work.log 2>&1 || \
	      { echo "fuzz: $$t failed:"; tail -50 $$work.log; exit 1; }; \
	    rm -rf $$work $$work.log' sh {}

fuzz-long: fuzz

# The official Engine.IO v4 / Socket.IO v5 conformance suites, run beside the project from a
# checkout of socketio/socket.io (see docs/compatibility.md).
conformance: build
	bash scripts/run-conformance $(SOCKETIO_REPO)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_TSAN)
