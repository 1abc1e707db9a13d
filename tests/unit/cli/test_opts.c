/* SPDX-License-Identifier: MIT */
/* Unit tests of the table-driven option parser (cli/opts.c) and of the server's table
 * (cli/app.c): every kind fills its field, bounds and whole numbers are enforced and leave the
 * field as it was, the environment is read first and argv wins, unknown options and missing
 * values are refused, and --help is generated from the same table. */
#include "unit.h"

#include <stdint.h>

#include "cli/app.h"
#include "cli/opts.h"
#include "util/err.h"

typedef struct sample {
    int flag;
    int num;
    unsigned u;
    uint32_t u32;
    size_t size;
    int64_t i64;
    double d;
    uint32_t ms;
    const char *str;
    const char *custom;
    int custom_from_env;
    const char *custom_what;
} sample_t;

static int parse_upper(void *target, const rp_cli_opt_t *opt, const char *v, const char *what,
                       const char *prefix, int from_env)
{
    (void)opt;
    (void)prefix;
    sample_t *s = target;
    if (v[0] < 'A' || v[0] > 'Z')
        return RP_EINVAL;
    s->custom = v;
    s->custom_from_env = from_env;
    s->custom_what = what;
    return 0;
}

#define S(f) offsetof(sample_t, f)
static const rp_cli_opt_t sample_opts[] = {
    {"--flag", NULL, RP_CLI_FLAG, S(flag), 0, 0, NULL, "a flag", NULL, 7},
    {"--num", "N", RP_CLI_INT, S(num), -5, 10, "RP_TEST_NUM", "an int", NULL, 0},
    {"--u", "N", RP_CLI_UNSIGNED, S(u), 1, 100, NULL, "an unsigned", NULL, 0},
    {"--u32", "MS", RP_CLI_U32, S(u32), 0, 4294967295.0, NULL, "a u32", NULL, 0},
    {"--size", "BYTES", RP_CLI_SIZE, S(size), 16, 1e12, NULL, "a size", NULL, 0},
    {"--i64", "N", RP_CLI_I64, S(i64), 1, 1e15, NULL, "an int64", NULL, 0},
    {NULL, NULL, RP_CLI_HEADING, 0, 0, 0, NULL, "\nmore:\n", NULL, 0},
    {"--d", "X", RP_CLI_DOUBLE, S(d), 0.5, 2.5, NULL, "a double", NULL, 0},
    {"--ms", "S", RP_CLI_MS, S(ms), 0.1, 86400, NULL, "seconds\nkept as ms", NULL, 0},
    {"--str", "TEXT", RP_CLI_STRING, S(str), 0, 0, "RP_TEST_STR", "a string", NULL, 0},
    {"--custom", "UPPER", RP_CLI_CUSTOM, 0, 0, 0, "RP_TEST_CUSTOM", "an upper-case word",
     parse_upper, 0},
    {NULL, NULL, RP_CLI_INT, S(num), -5, 10, "RP_TEST_HIDDEN", NULL, NULL, 0},
};

typedef struct run {
    sample_t s;
    rp_cli_optset_t set;
    rp_cli_cmd_t cmd;
    const char *words[4];
    int nwords;
} run_t;

static int on_word(void *ud, const char *arg, const char *prefix)
{
    (void)prefix;
    run_t *r = ud;
    if (r->nwords == 4)
        return RP_EINVAL;
    r->words[r->nwords++] = arg;
    return 0;
}

static void run_init(run_t *r, int positional)
{
    memset(r, 0, sizeof(*r));
    r->s.num = 3;
    r->s.u = 50;
    r->set = (rp_cli_optset_t){sample_opts, RP_CLI_COUNT(sample_opts), &r->s, NULL};
    r->cmd = (rp_cli_cmd_t){"test", "usage: test [OPTIONS]\n",   "bye\n", &r->set,
                            1,      positional ? on_word : NULL, r};
}

/* argv from a NULL-terminated list; argv[0] is the command's name. */
static int parse(run_t *r, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"test";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return rp_cli_parse(&r->cmd, argc, argv);
}

static void clear_env(void)
{
    unsetenv("RP_TEST_NUM");
    unsetenv("RP_TEST_STR");
    unsetenv("RP_TEST_CUSTOM");
    unsetenv("RP_TEST_HIDDEN");
}

static void fills_every_kind(void **state)
{
    (void)state;
    clear_env();
    run_t r;
    run_init(&r, 0);
    const char *args[] = {"--flag", "--num",      "-5",       "--u",           "100",
                          "--u32",  "4294967295", "--size",   "1000000000000", "--i64",
                          "1e15",   "--d",        "2.5",      "--ms",          "1.5",
                          "--str",  "hello",      "--custom", "Word",          NULL};
    assert_int_equal(parse(&r, args), 0);
    assert_int_equal(r.s.flag, 7);
    assert_int_equal(r.s.num, -5);
    assert_int_equal(r.s.u, 100);
    assert_int_equal(r.s.u32, 4294967295u);
    assert_int_equal(r.s.size, (size_t)1000000000000ULL);
    assert_true(r.s.i64 == (int64_t)1000000000000000LL);
    assert_true(r.s.d == 2.5);
    assert_int_equal(r.s.ms, 1500);
    assert_string_equal(r.s.str, "hello");
    assert_string_equal(r.s.custom, "Word");
    assert_int_equal(r.s.custom_from_env, 0);
    assert_string_equal(r.s.custom_what, "--custom");
    assert_string_equal(r.set.given, "--custom");
}

static void takes_name_equals_value(void **state)
{
    (void)state;
    clear_env();
    run_t r;
    run_init(&r, 0);
    const char *args[] = {"--num=9", "--str=a=b", NULL};
    assert_int_equal(parse(&r, args), 0);
    assert_int_equal(r.s.num, 9);
    assert_string_equal(r.s.str, "a=b");
    run_init(&r, 0);
    const char *flag_value[] = {"--flag=1", NULL};
    assert_int_equal(parse(&r, flag_value), RP_EINVAL);
    assert_int_equal(r.s.flag, 0);
}

/* Each value is refused and leaves the field as it was. */
static void refuses_values_out_of_bounds(void **state)
{
    (void)state;
    clear_env();
    static const char *const bad[][2] = {
        {"--num", "11"},  {"--num", "-6"},         {"--num", "x"},    {"--num", ""},
        {"--num", "2.5"}, {"--num", "3x"},         {"--u", "0"},      {"--u", "101"},
        {"--u32", "-1"},  {"--u32", "4294967296"}, {"--size", "15"},  {"--size", "1e13"},
        {"--i64", "0"},   {"--d", "0.4"},          {"--d", "2.6"},    {"--d", "nan"},
        {"--d", "inf"},   {"--ms", "0.05"},        {"--ms", "86401"}, {"--custom", "lower"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        run_t r;
        run_init(&r, 0);
        const char *args[] = {bad[k][0], bad[k][1], NULL};
        if (parse(&r, args) != RP_EINVAL)
            fail_msg("%s %s was accepted", bad[k][0], bad[k][1]);
        assert_int_equal(r.s.num, 3);
        assert_int_equal(r.s.u, 50);
        assert_int_equal(r.s.u32, 0);
        assert_int_equal(r.s.size, 0);
        assert_true(r.s.i64 == 0);
        assert_true(r.s.d == 0);
        assert_int_equal(r.s.ms, 0);
        assert_null(r.s.custom);
    }
}

static void accepts_the_bounds_themselves(void **state)
{
    (void)state;
    clear_env();
    run_t r;
    run_init(&r, 0);
    const char *low[] = {"--num", "-5",  "--u",  "1",   "--size", "16",
                         "--d",   "0.5", "--ms", "0.1", NULL};
    assert_int_equal(parse(&r, low), 0);
    assert_int_equal(r.s.num, -5);
    assert_int_equal(r.s.u, 1);
    assert_int_equal(r.s.size, 16);
    assert_true(r.s.d == 0.5);
    assert_int_equal(r.s.ms, 100);
    run_init(&r, 0);
    const char *high[] = {"--num", "10", "--u", "100", "--size", "1e12", "--d", "2.5", NULL};
    assert_int_equal(parse(&r, high), 0);
    assert_int_equal(r.s.num, 10);
    assert_int_equal(r.s.size, (size_t)1000000000000ULL);
}

static void reads_the_environment_and_argv_wins(void **state)
{
    (void)state;
    clear_env();
    setenv("RP_TEST_NUM", "8", 1);
    setenv("RP_TEST_STR", "from-env", 1);
    setenv("RP_TEST_CUSTOM", "Env", 1);
    run_t r;
    run_init(&r, 0);
    const char *none[] = {NULL};
    assert_int_equal(parse(&r, none), 0);
    assert_int_equal(r.s.num, 8);
    assert_string_equal(r.s.str, "from-env");
    assert_string_equal(r.s.custom, "Env");
    assert_int_equal(r.s.custom_from_env, 1);
    assert_string_equal(r.s.custom_what, "RP_TEST_CUSTOM");
    assert_null(r.set.given); /* the environment is not the command line */
    run_init(&r, 0);
    const char *args[] = {"--num", "2", "--str", "from-argv", NULL};
    assert_int_equal(parse(&r, args), 0);
    assert_int_equal(r.s.num, 2);
    assert_string_equal(r.s.str, "from-argv");
    /* An empty variable is unset; a bad one stops the parse; an env-only entry is read. */
    setenv("RP_TEST_NUM", "", 1);
    run_init(&r, 0);
    assert_int_equal(parse(&r, none), 0);
    assert_int_equal(r.s.num, 3);
    setenv("RP_TEST_NUM", "99", 1);
    run_init(&r, 0);
    assert_int_equal(parse(&r, none), RP_EINVAL);
    unsetenv("RP_TEST_NUM");
    setenv("RP_TEST_HIDDEN", "-4", 1);
    run_init(&r, 0);
    assert_int_equal(parse(&r, none), 0);
    assert_int_equal(r.s.num, -4);
    clear_env();
}

static void refuses_unknown_options_and_missing_values(void **state)
{
    (void)state;
    clear_env();
    run_t r;
    run_init(&r, 0);
    const char *unknown[] = {"--bogus", "1", NULL};
    assert_int_equal(parse(&r, unknown), RP_EINVAL);
    run_init(&r, 0);
    const char *prefix_only[] = {"--nu", "1", NULL};
    assert_int_equal(parse(&r, prefix_only), RP_EINVAL);
    run_init(&r, 0);
    const char *hidden[] = {"--RP_TEST_HIDDEN", "1", NULL}; /* env-only: no option name */
    assert_int_equal(parse(&r, hidden), RP_EINVAL);
    run_init(&r, 0);
    const char *missing[] = {"--num", NULL};
    assert_int_equal(parse(&r, missing), RP_EINVAL);
    assert_int_equal(r.s.num, 3);
    run_init(&r, 0);
    const char *word[] = {"stray", NULL};
    assert_int_equal(parse(&r, word), RP_EINVAL);
}

static void hands_positional_words_over(void **state)
{
    (void)state;
    clear_env();
    run_t r;
    run_init(&r, 1);
    const char *args[] = {"first", "--flag", "second", "--", "--num", NULL};
    assert_int_equal(parse(&r, args), 0);
    assert_int_equal(r.nwords, 3);
    assert_string_equal(r.words[0], "first");
    assert_string_equal(r.words[1], "second");
    assert_string_equal(r.words[2], "--num"); /* after "--" nothing is an option */
    assert_int_equal(r.s.flag, 7);
    assert_int_equal(r.s.num, 3);
}

static void help_comes_from_the_table(void **state)
{
    (void)state;
    clear_env();
    run_t r;
    run_init(&r, 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    rp_cli_help(&r.cmd, f);
    fclose(f);
    const char *want = "usage: test [OPTIONS]\n"
                       "  --flag                    a flag\n"
                       "  --num N                   an int (env RP_TEST_NUM)\n"
                       "  --u N                     an unsigned\n"
                       "  --u32 MS                  a u32\n"
                       "  --size BYTES              a size\n"
                       "  --i64 N                   an int64\n"
                       "\nmore:\n"
                       "  --d X                     a double\n"
                       "  --ms S                    seconds\n"
                       "                            kept as ms\n"
                       "  --str TEXT                a string (env RP_TEST_STR)\n"
                       "  --custom UPPER            an upper-case word (env RP_TEST_CUSTOM)\n"
                       "bye\n";
    assert_string_equal(text, want);
    assert_null(strstr(text, "RP_TEST_HIDDEN"));
    free(text);
    run_init(&r, 0);
    const char *args[] = {"--num", "4", "--help", "--num", "5", NULL};
    assert_int_equal(parse(&r, args), RP_CLI_HELP);
    run_init(&r, 0);
    const char *h[] = {"-h", NULL};
    assert_int_equal(parse(&r, h), RP_CLI_HELP);
}

/* The server's table as the three programs use it: serve leaves --workers out. */
static void server_table_keeps_its_bounds_and_serve_has_no_workers(void **state)
{
    (void)state;
    unsetenv("SOCKET_IO_PORT");
    unsetenv("SOCKET_IO_TRANSPORTS");
    unsetenv("SOCKET_IO_CORS_ORIGIN");
    unsetenv("RAGPULSE_LOG_LEVEL");
    rp_cli_opts_t o;
    rp_cli_opts_init(&o, 3000);
    rp_cli_optset_t sets[] = {{rp_cli_server_opts, rp_cli_server_nopts, &o, NULL}};
    rp_cli_cmd_t serve = {"serve", NULL, NULL, sets, 1, NULL, NULL};
    size_t set;
    assert_null(rp_cli_find(&serve, "--workers", &set));
    assert_non_null(rp_cli_find(&serve, "--max-header-bytes", &set));
    char *workers[] = {(char *)"serve", (char *)"--workers", (char *)"2", NULL};
    assert_int_equal(rp_cli_parse(&serve, 3, workers), RP_EINVAL);
    assert_int_equal(o.workers, 1);

    char *ok[] = {(char *)"rp-testserver",
                  (char *)"--workers",
                  (char *)"4",
                  (char *)"--listen",
                  (char *)"[::1]:0",
                  (char *)"--max-header-bytes",
                  (char *)"256",
                  (char *)"--transports",
                  (char *)"websocket",
                  NULL};
    assert_int_equal(rp_cli_opts_parse_server(&o, "rp-testserver", 9, ok), 0);
    assert_int_equal(o.workers, 4);
    assert_string_equal(o.host, "::1");
    assert_int_equal(o.port, 0);
    assert_int_equal(o.max_header, 256);
    assert_int_equal(o.eio.transports, RP_EIO_WEBSOCKET);
    char *big[] = {(char *)"x", (char *)"--workers", (char *)"65", NULL};
    assert_int_equal(rp_cli_opts_parse_server(&o, "x", 3, big), RP_EINVAL);
    char *small[] = {(char *)"x", (char *)"--max-header-bytes", (char *)"255", NULL};
    assert_int_equal(rp_cli_opts_parse_server(&o, "x", 3, small), RP_EINVAL);
    assert_int_equal(o.max_header, 256);

    setenv("SOCKET_IO_PORT", "4321", 1);
    rp_cli_opts_init(&o, 3000);
    char *none[] = {(char *)"x", NULL};
    assert_int_equal(rp_cli_opts_parse_server(&o, "x", 1, none), 0);
    assert_int_equal(o.port, 4321);
    char *listen[] = {(char *)"x", (char *)"--listen", (char *)"localhost:9", NULL};
    assert_int_equal(rp_cli_opts_parse_server(&o, "x", 3, listen), 0);
    assert_int_equal(o.port, 9);
    assert_string_equal(o.host, "127.0.0.1");
    unsetenv("SOCKET_IO_PORT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fills_every_kind),
        cmocka_unit_test(takes_name_equals_value),
        cmocka_unit_test(refuses_values_out_of_bounds),
        cmocka_unit_test(accepts_the_bounds_themselves),
        cmocka_unit_test(reads_the_environment_and_argv_wins),
        cmocka_unit_test(refuses_unknown_options_and_missing_values),
        cmocka_unit_test(hands_positional_words_over),
        cmocka_unit_test(help_comes_from_the_table),
        cmocka_unit_test(server_table_keeps_its_bounds_and_serve_has_no_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
