"""pytest fixtures for ragpulse's integration tests with the Python Socket.IO client.

Run with Debian's interpreter (it has python3-socketio 5.7 / python3-engineio 4.3):
    /usr/bin/python3 -m pytest -q tests/integration

Environment:
    RAGPULSE_BUILD_DIR  directory holding rp-testserver (default: <repo>/build)
    RP_TEST_SERVER=ref  run the Node reference server (ref-testserver.mjs) instead
    RP_REF_SERVER       path of the reference server script (default: ./ref-testserver.mjs)
"""
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get('RAGPULSE_BUILD_DIR') or os.path.join(REPO_DIR, 'build')
USE_REF = os.environ.get('RP_TEST_SERVER') == 'ref'
REF_SERVER = os.environ.get('RP_REF_SERVER') or os.path.join(HERE, 'ref-testserver.mjs')

_LISTEN_RE = re.compile(r'listening on http://([^\s:]+):(\d+)')


class Server:
    """A running server under test; stop() kills it by its PID."""

    def __init__(self, args=(), product=False, timeout=10.0):
        args = list(args)
        if '--listen' not in args:
            args = ['--listen', '127.0.0.1:0'] + args
        if USE_REF:
            node = shutil.which('node') or '/usr/bin/node'
            cmd = [node, REF_SERVER] + (['--product'] if product else []) + args
        else:
            exe = os.path.join(BUILD_DIR, 'ragpulse' if product else 'rp-testserver')
            if not os.path.exists(exe):
                raise RuntimeError(
                    f'server binary {exe} does not exist (build it, set RAGPULSE_BUILD_DIR, '
                    'or set RP_TEST_SERVER=ref to run against the Node reference server)')
            cmd = [exe] + (['serve'] if product else []) + args
        self.cmd = cmd
        self.stderr_lines = []
        # `ragpulse serve` keeps its events in ./ragpulse.db unless told otherwise: tests get
        # a memory store (no file, no state shared between tests) unless they pass --store.
        env = dict(os.environ)
        env.setdefault('RAGPULSE_STORE', 'memory')
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors='replace', env=env)
        lines = queue.Queue()

        def read_stdout():
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        def read_stderr():
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip('\n'))
                if len(self.stderr_lines) > 20000:
                    del self.stderr_lines[:10000]

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f'timeout waiting for "listening on" from {cmd}; stdout {seen!r}; '
                                   f'stderr {self.stderr_tail()}')
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise RuntimeError(f'server {cmd} exited with {self.proc.returncode} before '
                                   f'"listening on"; stdout {seen!r}; stderr {self.stderr_tail()}')
            seen.append(line)
            m = _LISTEN_RE.search(line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                self.url = f'http://{self.host}:{self.port}'
                break

    def stderr_tail(self, n=60):
        return '\n'.join(self.stderr_lines[-n:])

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=3)
        except ProcessLookupError:
            pass


_servers = []


def start_server(args=(), product=False):
    srv = Server(args, product=product)
    _servers.append(srv)
    return srv


@pytest.fixture(scope='module')
def server():
    """One server (default options) for a test module."""
    srv = start_server()
    yield srv
    srv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == 'call' and rep.failed:
        for srv in _servers:
            if srv.proc.poll() is None:
                rep.sections.append((f'server stderr ({" ".join(srv.cmd)})', srv.stderr_tail()))


def pytest_sessionfinish(session, exitstatus):
    for srv in _servers:
        try:
            srv.stop(signal.SIGKILL)
        except Exception:  # pragma: no cover
            pass
