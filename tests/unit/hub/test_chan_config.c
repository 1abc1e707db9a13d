/* SPDX-License-Identifier: MIT */
/* hub/chan_config: the contract's seed config loads with every field as written; each rule of
 * the config file, crossed once, is RP_EINVAL with a message naming the line:column or the
 * field path and the rule, and leaves the config empty; the name, glob and template helpers;
 * loading from a file; out-of-memory at every allocation of a parse. */
#include "unit.h"

#include <jansson.h>
#include <unistd.h>
#include <uv.h>

#include "hub/chan_config.h"
#include "util/alloc.h"
#include "util/err.h"

static const char SEED[] =
    "{\n"
    "  \"channels\": [\n"
    "    {\"pattern\": \"crawl:*\", \"kind\": \"state\",\n"
    "     \"terminal\": {\"field\": \"status\", \"values\": [\"completed\", \"error\"], "
    "\"delay_ms\": 5000}},\n"
    "    {\"pattern\": \"tasks:*\", \"kind\": \"state\", \"max_entries\": 10000},\n"
    "    {\"pattern\": \"chat:*\",  \"kind\": \"stream\", \"retain\": {\"count\": 1000, "
    "\"age_s\": 604800}},\n"
    "    {\"pattern\": \"logs:*\",  \"kind\": \"stream\", \"retain\": {\"count\": 10000, "
    "\"age_s\": 3600}}\n"
    "  ],\n"
    "  \"namespaces\": {\n"
    "    \"/crawl\": {\n"
    "      \"join\":  [{\"event\": \"join_crawl\", \"channel\": \"crawl:{progress_id}\"}],\n"
    "      \"leave\": [{\"event\": \"leave_crawl\", \"channel\": \"crawl:{progress_id}\"}],\n"
    "      \"deliver\": [{\"channel\": \"crawl:*\", \"event\": \"progress_update\"}]\n"
    "    },\n"
    "    \"/chat\": {\n"
    "      \"join\":  [{\"event\": \"join_session\", \"channel\": \"chat:{session_id}\"}],\n"
    "      \"deliver\": [{\"channel\": \"chat:*\", \"event\": \"new_message\",\n"
    "                   \"history\": {\"event\": \"session_history\", \"field\": \"messages\", "
    "\"last\": 100}}],\n"
    "      \"forward\": [{\"event\": \"send_message\", \"channel\": \"chat:{session_id}\",\n"
    "                   \"url\": \"http://127.0.0.1:8001/forward/send_message\", "
    "\"timeout_ms\": 5000}]\n"
    "    }\n"
    "  },\n"
    "  \"forward\": {\"concurrency\": 16, \"timeout_ms\": 5000},\n"
    "  \"limits\": {\"max_channels\": 10000, \"max_entries\": 10000, \"max_message_bytes\": "
    "65536,\n"
    "             \"max_history\": 10000, \"publish_rate\": 0, \"publish_burst\": 0}\n"
    "}\n";

static int parse(rp_chan_config_t *cfg, const char *text, char *err, size_t errlen)
{
    char *copy = dup_exact(text, strlen(text));
    int rc = rp_chan_config_parse(cfg, "t.json", copy, strlen(text), err, errlen);
    free(copy);
    return rc;
}

static void assert_empty(const rp_chan_config_t *cfg)
{
    assert_null(cfg->patterns);
    assert_int_equal(cfg->npatterns, 0);
    assert_null(cfg->nsps);
    assert_int_equal(cfg->nnsps, 0);
    assert_int_equal(cfg->max_entries, 10000);
}

static void seed_config_loads_as_written(void **state)
{
    (void)state;
    rp_chan_config_t cfg;
    char err[256];
    assert_int_equal(parse(&cfg, SEED, err, sizeof(err)), 0);
    assert_int_equal(cfg.npatterns, 4);
    const rp_chan_pattern_t *p = &cfg.patterns[0];
    assert_string_equal(p->pattern, "crawl:*");
    assert_int_equal(p->kind, RP_CHAN_STATE);
    assert_string_equal(p->terminal_field, "status");
    assert_int_equal(p->nterminal_values, 2);
    assert_string_equal(p->terminal_values[0], "completed");
    assert_string_equal(p->terminal_values[1], "error");
    assert_int_equal(p->terminal_delay_ms, 5000);
    assert_int_equal(p->ttl_ms, 0);
    assert_int_equal(p->max_entries, 10000);
    assert_string_equal(cfg.patterns[1].pattern, "tasks:*");
    assert_null(cfg.patterns[1].terminal_field);
    p = &cfg.patterns[2];
    assert_string_equal(p->pattern, "chat:*");
    assert_int_equal(p->kind, RP_CHAN_STREAM);
    assert_int_equal(p->retain_count, 1000);
    assert_int_equal(p->retain_age_s, 604800);
    assert_int_equal(cfg.patterns[3].retain_count, 10000);
    assert_int_equal(cfg.patterns[3].retain_age_s, 3600);

    assert_int_equal(cfg.nnsps, 2);
    const rp_chan_nsp_config_t *crawl = &cfg.nsps[0];
    const rp_chan_nsp_config_t *chat = &cfg.nsps[1];
    assert_string_equal(crawl->name, "/crawl");
    assert_int_equal(crawl->njoin, 1);
    assert_string_equal(crawl->join[0].event, "join_crawl");
    assert_string_equal(crawl->join[0].channel, "crawl:{progress_id}");
    assert_int_equal(crawl->nleave, 1);
    assert_string_equal(crawl->leave[0].event, "leave_crawl");
    assert_int_equal(crawl->ndeliver, 1);
    assert_string_equal(crawl->deliver[0].channel, "crawl:*");
    assert_string_equal(crawl->deliver[0].event, "progress_update");
    assert_null(crawl->deliver[0].delete_event);
    assert_null(crawl->deliver[0].history_event);
    assert_null(crawl->deliver[0].snapshot_event);
    assert_int_equal(crawl->nforward, 0);
    assert_int_equal(crawl->rooms, 1);

    assert_string_equal(chat->name, "/chat");
    assert_int_equal(chat->nleave, 0);
    assert_string_equal(chat->deliver[0].history_event, "session_history");
    assert_string_equal(chat->deliver[0].history_field, "messages");
    assert_int_equal(chat->deliver[0].history_last, 100);
    assert_int_equal(chat->nforward, 1);
    assert_string_equal(chat->forward[0].event, "send_message");
    assert_string_equal(chat->forward[0].channel, "chat:{session_id}");
    assert_string_equal(chat->forward[0].url, "http://127.0.0.1:8001/forward/send_message");
    assert_int_equal(chat->forward[0].timeout_ms, 5000);

    assert_int_equal(cfg.forward_concurrency, 16);
    assert_int_equal(cfg.forward_timeout_ms, 5000);
    assert_int_equal(cfg.max_channels, 10000);
    assert_int_equal(cfg.max_message_bytes, 65536);
    assert_int_equal(cfg.max_history, 10000);
    assert_true(cfg.publish_rate == 0 && cfg.publish_burst == 0);

    assert_ptr_equal(rp_chan_config_find(&cfg, "chat:s1"), &cfg.patterns[2]);
    assert_ptr_equal(rp_chan_config_find(&cfg, "crawl:demo-crawl"), &cfg.patterns[0]);
    assert_null(rp_chan_config_find(&cfg, "other:x"));
    rp_chan_config_free(&cfg);
    assert_empty(&cfg);
}

static void minimal_config_gets_the_defaults(void **state)
{
    (void)state;
    rp_chan_config_t cfg;
    char err[256];
    const char *text = "{\"limits\":{\"max_entries\":7,\"publish_rate\":2.5},"
                       "\"channels\":[{\"pattern\":\"s:*\",\"kind\":\"state\",\"ttl_ms\":60000},"
                       "{\"pattern\":\"m:*\",\"kind\":\"stream\"}],"
                       "\"namespaces\":{\"/x\":{\"rooms\":false,\"deliver\":[{\"channel\":"
                       "\"s:a*\",\"event\":\"e\",\"delete_event\":\"gone\",\"snapshot\":"
                       "{\"event\":\"snap\",\"field\":\"entries\"}}],\"forward\":[{\"event\":"
                       "\"f\",\"channel\":\"m:{id}\",\"url\":\"http://localhost/x\"}]}}}";
    assert_int_equal(parse(&cfg, text, err, sizeof(err)), 0);
    assert_int_equal(cfg.patterns[0].max_entries, 7); /* limits.max_entries */
    assert_int_equal(cfg.patterns[0].ttl_ms, 60000);
    assert_int_equal(cfg.patterns[1].retain_count, 1000);
    assert_int_equal(cfg.patterns[1].retain_age_s, 0);
    assert_true(cfg.publish_rate == 2.5);
    assert_int_equal(cfg.forward_concurrency, 16);
    assert_int_equal(cfg.max_channels, 10000);
    assert_int_equal(cfg.nsps[0].rooms, 0);
    assert_string_equal(cfg.nsps[0].deliver[0].delete_event, "gone");
    assert_string_equal(cfg.nsps[0].deliver[0].snapshot_event, "snap");
    assert_string_equal(cfg.nsps[0].deliver[0].snapshot_field, "entries");
    assert_int_equal(cfg.nsps[0].forward[0].timeout_ms, 0); /* the forward section's */
    rp_chan_config_free(&cfg);
}

/* A bad file: RP_EINVAL, the message holds `want`, and nothing is left allocated. */
struct bad {
    const char *text;
    const char *want;
};

#define CH       "\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"state\"}]"
#define NS(body) "{" CH ",\"namespaces\":{\"/n\":" body "}}"

static const struct bad bad_files[] = {
    {"{\n  \"channels\": [\n    {\"pattern\": \"c:*\",}\n]}", "t.json:3:"},
    {"{" CH ",\n\"limits\":{},\n\"limits\":{}}", "t.json:3:"},
    {"{" CH ",\"extra\":1}", "t.json: extra: unknown field"},
    {"[]", "t.json: must be an object"},
    {"{}", "t.json: channels: required"},
    {"{\"channels\":[]}", "t.json: channels: must be an array of 1..256 elements"},
    {"{\"channels\":[{\"kind\":\"state\"}]}", "t.json: channels[0].pattern: required"},
    {"{\"channels\":[{\"pattern\":\"c d\",\"kind\":\"state\"}]}",
     "channels[0].pattern: must be a channel pattern"},
    {"{\"channels\":[{\"pattern\":\"c:*\"}]}", "channels[0].kind: required"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"queue\"}]}",
     "channels[0].kind: must be \"state\" or \"stream\""},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"stream\",\"terminal\":{\"field\":\"s\","
     "\"values\":[\"x\"]}}]}",
     "channels[0].terminal: state channels only"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"state\",\"retain\":{}}]}",
     "channels[0].retain: stream channels only"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"state\",\"terminal\":{\"field\":\"s\","
     "\"values\":[\"x\"],\"delay_ms\":86400001}}]}",
     "channels[0].terminal.delay_ms: must be an integer in 0..86400000"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"state\",\"terminal\":{\"field\":\"s\","
     "\"values\":[]}}]}",
     "channels[0].terminal.values: must be an array of 1..256 elements"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"state\",\"terminal\":{\"field\":\"s\","
     "\"values\":[\"x\",3]}}]}",
     "channels[0].terminal.values[1]: must be a string"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"state\",\"max_entries\":0}]}",
     "channels[0].max_entries: must be an integer in 1..10000000"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"stream\",\"retain\":{\"count\":1000,"
     "\"age_s\":-1}}]}",
     "channels[0].retain.age_s: must be an integer in 0..31536000"},
    {"{\"channels\":[{\"pattern\":\"c:*\",\"kind\":\"stream\",\"retain\":{\"keep\":1}}]}",
     "channels[0].retain.keep: unknown field"},
    {"{" CH ",\"limits\":{\"max_message_bytes\":15}}",
     "limits.max_message_bytes: must be an integer in 16..16777216"},
    {"{" CH ",\"limits\":{\"max_history\":1000001}}",
     "limits.max_history: must be an integer in 1..1000000"},
    {"{" CH ",\"limits\":{\"publish_rate\":-1}}", "limits.publish_rate: must be a number >= 0"},
    {"{" CH ",\"forward\":{\"concurrency\":1025}}",
     "forward.concurrency: must be an integer in 1..1024"},
    {"{" CH ",\"forward\":{\"timeout_ms\":99}}",
     "forward.timeout_ms: must be an integer in 100..600000"},
    {"{" CH ",\"namespaces\":{\"/pipeline\":{}}}", "namespaces./pipeline: reserved namespace"},
    {"{" CH ",\"namespaces\":{\"/channels\":{}}}", "namespaces./channels: reserved namespace"},
    {"{" CH ",\"namespaces\":{\"/local_files\":{}}}",
     "namespaces./local_files: reserved namespace"},
    {"{" CH ",\"namespaces\":{\"chat\":{}}}", "namespaces.chat: must be a namespace name"},
    {NS("{\"joins\":[]}"), "namespaces./n.joins: unknown field"},
    {NS("{\"join\":[{\"event\":\"j\",\"channel\":\"c:{id\"}]}"),
     "namespaces./n.join[0].channel: must be a channel template"},
    {NS("{\"join\":[{\"event\":\"j\",\"channel\":\"c:{}\"}]}"),
     "namespaces./n.join[0].channel: must be a channel template"},
    {NS("{\"leave\":[{\"event\":\"j\",\"channel\":\"c {id}\"}]}"),
     "namespaces./n.leave[0].channel: must be a channel template"},
    {NS("{\"join\":[{\"event\":\"disconnect\",\"channel\":\"c:{id}\"}]}"),
     "namespaces./n.join[0].event: is a Socket.IO reserved event name"},
    {NS("{\"join\":[{\"channel\":\"c:{id}\"}]}"), "namespaces./n.join[0].event: required"},
    {NS("{\"forward\":[{\"event\":\"f\",\"channel\":\"c:{id}\"}]}"),
     "namespaces./n.forward[0].url: required"},
    {NS("{\"forward\":[{\"event\":\"f\",\"channel\":\"c:{id}\",\"url\":\"https://x/y\"}]}"),
     "namespaces./n.forward[0].url: must be an http:// URL"},
    {NS("{\"forward\":[{\"event\":\"f\",\"channel\":\"c:{id}\",\"url\":\"http://x:0/y\"}]}"),
     "namespaces./n.forward[0].url: "},
    {NS("{\"forward\":[{\"event\":\"f\",\"channel\":\"c:{id}\",\"url\":\"http://x/\","
        "\"timeout_ms\":600001}]}"),
     "namespaces./n.forward[0].timeout_ms: must be an integer in 100..600000"},
    {NS("{\"deliver\":[{\"channel\":\"other:*\",\"event\":\"e\"}]}"),
     "namespaces./n.deliver[0].channel: matches no channel of channels[]"},
    {NS("{\"deliver\":[{\"channel\":\"c:[x]\",\"event\":\"e\"}]}"),
     "namespaces./n.deliver[0].channel: must be a channel pattern"},
    {NS("{\"deliver\":[{\"channel\":\"c:*\",\"event\":\"e\",\"history\":{\"event\":\"h\","
        "\"field\":\"m\",\"last\":0}}]}"),
     "namespaces./n.deliver[0].history.last: must be an integer in 1..10000"},
    {NS("{\"deliver\":[{\"channel\":\"c:*\",\"event\":\"e\",\"snapshot\":{\"event\":\"h\","
        "\"field\":\"m\",\"last\":3}}]}"),
     "namespaces./n.deliver[0].snapshot.last: unknown field"},
    {NS("{\"rooms\":1}"), "namespaces./n.rooms: must be true or false"},
};

static void each_rule_crossed_is_refused_with_where_and_why(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad_files); i++) {
        rp_chan_config_t cfg;
        char err[256];
        int rc = parse(&cfg, bad_files[i].text, err, sizeof(err));
        if (rc != RP_EINVAL || strstr(err, bad_files[i].want) == NULL) {
            print_error("bad file %zu: rc %d, err \"%s\", wanted \"%s\"\n", i, rc, err,
                        bad_files[i].want);
            fail();
        }
        assert_empty(&cfg);
    }
}

static void duplicate_key_names_its_line(void **state)
{
    (void)state;
    rp_chan_config_t cfg;
    char err[256];
    const char *text = "{" CH ",\n\"namespaces\":{\"/a\":{},\n\"/a\":{}}}";
    assert_int_equal(parse(&cfg, text, err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "t.json:3:"));
    assert_non_null(strstr(err, "duplicate"));
}

static void names_and_patterns(void **state)
{
    (void)state;
    assert_true(rp_chan_name_valid("crawl:demo-crawl", 16));
    assert_true(rp_chan_name_valid("logs:mcp-1@a.b_c", 16));
    assert_false(rp_chan_name_valid("", 0));
    assert_false(rp_chan_name_valid("a b", 3));
    assert_false(rp_chan_name_valid("a*", 2));
    assert_false(rp_chan_name_valid("a/b", 3));
    char long_name[130];
    memset(long_name, 'a', sizeof(long_name));
    assert_true(rp_chan_name_valid(long_name, 128));
    assert_false(rp_chan_name_valid(long_name, 129));

    assert_true(rp_chan_match("crawl:*", "crawl:abc"));
    assert_true(rp_chan_match("crawl:*", "crawl:"));
    assert_false(rp_chan_match("crawl:*", "crawlx:abc"));
    assert_true(rp_chan_match("*", "anything"));
    assert_true(rp_chan_match("a*b*c", "axxbyyc"));
    assert_true(rp_chan_match("a*b*c", "abbbc"));
    assert_false(rp_chan_match("a*b*c", "abbbcd"));
    assert_true(rp_chan_match("*:s1", "chat:s1"));
    assert_false(rp_chan_match("chat:s1", "chat:s12"));
    assert_true(rp_chan_match("chat:s1", "chat:s1"));
}

static void deliver_patterns_overlap_checks(void **state)
{
    (void)state;
    static const struct {
        const char *channel;
        int ok;
    } cases[] = {{"c:*", 1}, {"*", 1}, {"c:a*", 1}, {"*:x", 1}, {"c*", 1}, {"d:*", 0}, {"c", 0}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{" CH ",\"namespaces\":{\"/n\":{\"deliver\":[{\"channel\":\"%s\","
                 "\"event\":\"e\"}]}}}",
                 cases[i].channel);
        rp_chan_config_t cfg;
        char err[256];
        int rc = parse(&cfg, text, err, sizeof(err));
        if ((rc == 0) != cases[i].ok) {
            print_error("deliver %s: rc %d (%s)\n", cases[i].channel, rc, err);
            fail();
        }
        rp_chan_config_free(&cfg);
    }
}

static void templates_fill_from_strings_and_numbers(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:s,s:i,s:f,s:b,s:s}", "progress_id", "demo-crawl", "n", 42, "r", 1.5,
                          "flag", 1, "bad", "a b");
    char out[129], missing[32];
    assert_int_equal(
        rp_chan_template_fill("crawl:{progress_id}", p, out, sizeof(out), missing, sizeof(missing)),
        0);
    assert_string_equal(out, "crawl:demo-crawl");
    assert_int_equal(rp_chan_template_fill("t:{n}.{r}", p, out, sizeof(out), missing, 32), 0);
    assert_string_equal(out, "t:42.1.5");
    assert_int_equal(rp_chan_template_fill("plain", p, out, sizeof(out), missing, 32), 0);
    assert_string_equal(out, "plain");
    assert_int_equal(rp_chan_template_fill("c:{session_id}", p, out, sizeof(out), missing, 32),
                     RP_ENOTFOUND);
    assert_string_equal(missing, "session_id");
    /* a boolean is not a string or number field */
    assert_int_equal(rp_chan_template_fill("c:{flag}", p, out, sizeof(out), missing, 32),
                     RP_ENOTFOUND);
    assert_string_equal(missing, "flag");
    assert_int_equal(rp_chan_template_fill("c:{bad}", p, out, sizeof(out), missing, 32), RP_EINVAL);
    assert_int_equal(rp_chan_template_fill("c:{n}", NULL, out, sizeof(out), missing, 32),
                     RP_ENOTFOUND);
    char small[4];
    assert_int_equal(rp_chan_template_fill("crawl:{n}", p, small, sizeof(small), missing, 32),
                     RP_ETOOBIG);
    char long_val[200];
    memset(long_val, 'x', sizeof(long_val) - 1);
    long_val[sizeof(long_val) - 1] = '\0';
    json_object_set_new(p, "long", json_string(long_val));
    assert_int_equal(rp_chan_template_fill("c:{long}", p, out, sizeof(out), missing, 32),
                     RP_EINVAL);
    json_decref(p);
}

static void loads_from_a_file_and_names_an_unreadable_one(void **state)
{
    (void)state;
    char path[] = "/tmp/rp_chan_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, SEED, strlen(SEED)), (ssize_t)strlen(SEED));
    close(fd);
    rp_chan_config_t cfg;
    char err[512];
    assert_int_equal(rp_chan_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.npatterns, 4);
    rp_chan_config_free(&cfg);
    unlink(path);
    assert_int_equal(rp_chan_config_load(&cfg, path, err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "cannot read"));
    assert_non_null(strstr(err, path));
    assert_empty(&cfg);
}

static void out_of_memory_at_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    for (unsigned long n = 1;; n++) {
        rp_chan_config_t cfg;
        char err[256];
        rp_alloc_fail_at(n);
        int rc = parse(&cfg, SEED, err, sizeof(err));
        int failed = rp_alloc_failed();
        rp_alloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            rp_chan_config_free(&cfg);
            break;
        }
        assert_int_equal(rc, UV_ENOMEM);
        assert_non_null(strstr(err, "out of memory"));
        assert_empty(&cfg);
        assert_true(n < 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seed_config_loads_as_written),
        cmocka_unit_test(minimal_config_gets_the_defaults),
        cmocka_unit_test(each_rule_crossed_is_refused_with_where_and_why),
        cmocka_unit_test(duplicate_key_names_its_line),
        cmocka_unit_test(names_and_patterns),
        cmocka_unit_test(deliver_patterns_overlap_checks),
        cmocka_unit_test(templates_fill_from_strings_and_numbers),
        cmocka_unit_test(loads_from_a_file_and_names_an_unreadable_one),
        cmocka_unit_test(out_of_memory_at_every_allocation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
