/* SPDX-License-Identifier: MIT */
/* hub/event: the string rules of event validation. Lengths count code points, free text keeps
 * tab, newline and carriage return, other control characters and invalid UTF-8 are refused,
 * and every refusal names the field and the rule that actually failed (never a length rule
 * for a character, never a "required" for a wrong value). Strings jansson's decoder would
 * never produce (invalid UTF-8, NUL) are built with json_stringn_nocheck. Then each event kind:
 * its smallest accepted form, what it requires and what it may not carry, the bounds of numbers
 * and objects, unknown fields and the hub's own (id, ts), and the normalised form (the hub's
 * fields first, known fields in schema order, a string error as {message}). */
#include "unit.h"

#include <jansson.h>

#include "hub/event.h"
#include "util/err.h"

/* A file:failed event from JSON text; the caller validates it. */
static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL)
        fail_msg("bad test JSON: %s", jerr.text);
    return j;
}

static json_t *failed_with(json_t *error)
{
    json_t *ev = parse("{\"type\":\"file:failed\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\","
                       "\"file\":{\"id\":\"f1\",\"name\":\"a.pdf\"}}");
    json_object_set_new(json_object_get(ev, "file"), "error", error);
    return ev;
}

/* Validates ev (and frees it): -1 with field and rule as given (rule: a prefix), or a type. */
static void expect_refused(json_t *ev, const char *field, const char *rule)
{
    rp_event_error_t err;
    assert_int_equal(rp_event_validate(ev, &err), RP_EINVAL);
    assert_string_equal(err.field, field);
    if (strncmp(err.rule, rule, strlen(rule)) != 0)
        fail_msg("%s: rule \"%s\", expected \"%s...\"", field, err.rule, rule);
    json_decref(ev);
}

static void expect_accepted(json_t *ev, int type)
{
    rp_event_error_t err = {"", ""};
    int t = rp_event_validate(ev, &err);
    if (t != type)
        fail_msg("refused: %s %s", err.field, err.rule);
    json_decref(ev);
}

static const char traceback[] = "Traceback (most recent call last):\n"
                                "  File \"/srv/ingest.py\", line 42, in parse\r\n"
                                "\traise ValueError(\"bad page\")\n"
                                "ValueError: bad page";

static void accepts_a_traceback_in_every_free_text_field(void **state)
{
    (void)state;
    expect_accepted(failed_with(json_string(traceback)), RP_EV_FILE_FAILED);
    expect_accepted(failed_with(json_pack("{s:s,s:s}", "message", traceback, "kind", "ValueError")),
                    RP_EV_FILE_FAILED);
    json_t *hb = parse("{\"type\":\"heartbeat\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\"}");
    json_object_set_new(hb, "message", json_string(traceback));
    expect_accepted(hb, RP_EV_HEARTBEAT);
}

/* n copies of the UTF-8 text c, as a JSON string (a new reference). */
static json_t *repeat(const char *c, size_t n)
{
    size_t cl = strlen(c);
    char *s = malloc(cl * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * cl, c, cl);
    s[cl * n] = '\0';
    json_t *j = json_string(s);
    free(s);
    assert_non_null(j);
    return j;
}

static json_t *processing_with(const char *member, json_t *v)
{
    json_t *ev =
        parse("{\"type\":\"file:processing\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\","
              "\"file\":{\"id\":\"f1\",\"name\":\"a.pdf\"}}");
    json_object_set_new(json_object_get(ev, "file"), member, v);
    return ev;
}

static void counts_characters_not_bytes(void **state)
{
    (void)state;
    expect_accepted(processing_with("id", repeat("\xc3\xa9", 200)), RP_EV_FILE_PROCESSING); /* é */
    expect_accepted(processing_with("id", repeat("\xf0\x9f\x93\x84", 256)), RP_EV_FILE_PROCESSING);
    expect_refused(processing_with("id", repeat("\xc3\xa9", 257)), "file.id",
                   "must be 1 to 256 characters (this one has 257)");
    expect_accepted(processing_with("name", repeat("\xe6\x96\x87", 1024)), RP_EV_FILE_PROCESSING);
    expect_refused(processing_with("name", repeat("\xe6\x96\x87", 1025)), "file.name",
                   "must be 1 to 1024 characters");
    expect_accepted(failed_with(repeat("\xc3\xa9", 8192)), RP_EV_FILE_FAILED);
    expect_refused(failed_with(repeat("\xc3\xa9", 8193)), "file.error",
                   "must be 1 to 8192 characters");
    json_t *hb = parse("{\"type\":\"heartbeat\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\"}");
    json_object_set_new(hb, "message", repeat("\xc3\xa9", 4097));
    expect_refused(hb, "message", "must be at most 4096 characters");
}

static void refuses_control_characters_with_their_own_reason(void **state)
{
    (void)state;
    /* Single-line fields refuse every control character, newline included. */
    expect_refused(processing_with("id", json_string("a\nb")), "file.id",
                   "must not contain control characters");
    expect_refused(processing_with("name", json_string("a\tb")), "file.name",
                   "must not contain control characters");
    expect_refused(processing_with("name", json_string("a\x7f")), "file.name",
                   "must not contain control characters");
    expect_refused(processing_with("name", json_string("a\xc2\x85")), "file.name", /* U+0085 */
                   "must not contain control characters");
    expect_refused(processing_with("mime_type", json_string("text/\x01")), "file.mime_type",
                   "must not contain control characters");
    /* Free text keeps tab, newline and carriage return only. */
    const char *rule =
        "must not contain control characters other than tab, newline and carriage return";
    expect_refused(failed_with(json_string("red \x1b[31m text")), "file.error", rule);
    expect_refused(failed_with(json_pack("{s:s}", "message", "bell\a")), "file.error.message",
                   rule);
    expect_refused(failed_with(json_pack("{s:s,s:s}", "message", "m", "kind", "a\nb")),
                   "file.error.kind", "must not contain control characters");
    expect_refused(failed_with(json_pack("{s:s,s:s}", "message", "m", "code", "E\r1")),
                   "file.error.code", "must not contain control characters");
    /* A NUL is a control character (jansson decodes none, but a caller could build one). */
    expect_refused(processing_with("id", json_stringn_nocheck("a\0b", 3)), "file.id",
                   "must not contain control characters");
    /* Allowed printable non-ASCII right next to the C1 range. */
    expect_accepted(processing_with("name", json_string("\xc2\xa0\xc2\xbf")),
                    RP_EV_FILE_PROCESSING);
}

static void refuses_invalid_utf8_with_its_own_reason(void **state)
{
    (void)state;
    expect_refused(processing_with("id", json_stringn_nocheck("a\xff", 2)), "file.id",
                   "must be valid UTF-8");
    expect_refused(processing_with("name", json_stringn_nocheck("\xc3", 1)), "file.name",
                   "must be valid UTF-8");
    expect_refused(failed_with(json_stringn_nocheck("\xed\xa0\x80", 3)), "file.error",
                   "must be valid UTF-8");
}

static void names_the_rule_that_failed_for_ids(void **state)
{
    (void)state;
    json_t *ev = parse("{\"type\":\"heartbeat\",\"pipeline_type\":\"t\"}");
    expect_refused(json_deep_copy(ev), "pipeline_id", "is required");
    json_object_set_new(ev, "pipeline_id", json_string("caf\xc3\xa9"));
    expect_refused(json_deep_copy(ev), "pipeline_id", "must contain only A-Z a-z 0-9 . _ : -");
    json_object_set_new(ev, "pipeline_id", repeat("a", 129));
    expect_refused(json_deep_copy(ev), "pipeline_id",
                   "must be 1 to 128 characters (this one has 129)");
    json_object_set_new(ev, "pipeline_id", json_string("a\nb"));
    expect_refused(json_deep_copy(ev), "pipeline_id", "must not contain control characters");
    json_object_set_new(ev, "pipeline_id", json_integer(12));
    expect_refused(json_deep_copy(ev), "pipeline_id", "must be a string");
    json_object_set_new(ev, "pipeline_id", json_string("p"));
    json_object_set_new(ev, "pipeline_type", json_string("Local"));
    expect_refused(json_deep_copy(ev), "pipeline_type", "must contain only a-z 0-9 _");
    json_object_set_new(ev, "pipeline_type", json_string(""));
    expect_refused(json_deep_copy(ev), "pipeline_type",
                   "must be 1 to 64 characters (this one has 0)");
    json_decref(ev);
    expect_refused(failed_with(json_pack("{s:s,s:f}", "message", "m", "code", 1.5)),
                   "file.error.code", "must be an integer or a string of 1 to 64 characters");
}

static void file_deleted_names_a_file_and_carries_no_error(void **state)
{
    (void)state;
    expect_accepted(
        parse("{\"type\":\"file:deleted\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\","
              "\"file\":{\"id\":\"f1\",\"name\":\"a.txt\"}}"),
        RP_EV_FILE_DELETED);
    assert_true(rp_event_is_file(RP_EV_FILE_DELETED));
    assert_string_equal(rp_event_type_name(RP_EV_FILE_DELETED), "file:deleted");
    expect_refused(
        parse("{\"type\":\"file:deleted\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\"}"), "file",
        "is required");
    expect_refused(parse("{\"type\":\"file:deleted\",\"pipeline_id\":\"p\",\"pipeline_type\":\"t\","
                         "\"file\":{\"id\":\"f1\",\"name\":\"a.txt\",\"error\":\"x\"}}"),
                   "file.error", "is only allowed on file:failed");
}

/* ---- each event kind: what it requires, what it may carry, what it may not ---- */

static json_t *base(const char *type)
{
    return json_pack("{s:s,s:s,s:s}", "type", type, "pipeline_id", "docs-1", "pipeline_type",
                     "local_files");
}

static json_t *with(json_t *ev, const char *key, json_t *v)
{
    json_object_set_new(ev, key, v);
    return ev;
}

static json_t *with_file(const char *type, const char *file_json)
{
    return with(base(type), "file", parse(file_json));
}

static void every_kind_is_accepted_in_its_smallest_form(void **state)
{
    (void)state;
    for (int t = 0; t < RP_EV_COUNT; t++) {
        const char *name = rp_event_type_name((rp_event_type_t)t);
        assert_int_equal(rp_event_type_parse(name, strlen(name)), t);
        json_t *ev = base(name);
        if (t == RP_EV_STATUS_UPDATE)
            json_object_set_new(ev, "status", json_string("idle"));
        if (rp_event_is_file((rp_event_type_t)t)) {
            json_t *f = json_pack("{s:s,s:s}", "id", "f1", "name", "a.pdf");
            if (t == RP_EV_FILE_PROGRESS)
                json_object_set_new(f, "progress", json_real(0.5));
            if (t == RP_EV_FILE_FAILED)
                json_object_set_new(f, "error", json_string("boom"));
            json_object_set_new(ev, "file", f);
        }
        expect_accepted(ev, t);
    }
    assert_int_equal(rp_event_type_parse("file:progres", 12), RP_ENOTFOUND);
    assert_int_equal(rp_event_type_parse("file:progress", 12),
                     RP_ENOTFOUND); /* a span, not a C string */
    assert_string_equal(rp_event_type_name(RP_EV_COUNT), "?");
}

static void each_kind_refuses_what_it_lacks_or_may_not_carry(void **state)
{
    (void)state;
    expect_refused(base("file:started"), "type", "is required: one of pipeline:online");
    expect_refused(with(base("heartbeat"), "type", json_integer(1)), "type", "is required: one of");
    expect_refused(base("file:processing"), "file", "is required for file events");
    expect_refused(with(base("heartbeat"), "file", parse("{\"id\":\"f\",\"name\":\"n\"}")), "file",
                   "is only allowed on file events");
    expect_refused(with(base("file:processing"), "file", json_string("f1")), "file",
                   "must be an object");
    expect_refused(with_file("file:processing", "{\"name\":\"n\"}"), "file.id",
                   "is required: 1 to 256");
    expect_refused(with_file("file:processing", "{\"id\":\"f\"}"), "file.name",
                   "is required: 1 to 1024");
    expect_refused(with_file("file:progress", "{\"id\":\"f\",\"name\":\"n\"}"), "file.progress",
                   "is required for file:progress");
    expect_refused(with_file("file:progress", "{\"id\":\"f\",\"name\":\"n\",\"progress\":1.5}"),
                   "file.progress", "must be a number from 0 to 1");
    expect_refused(
        with_file("file:progress", "{\"id\":\"f\",\"name\":\"n\",\"progress\":\"half\"}"),
        "file.progress", "must be a number from 0 to 1");
    expect_refused(with_file("file:failed", "{\"id\":\"f\",\"name\":\"n\"}"), "file.error",
                   "is required for file:failed");
    expect_refused(with_file("file:completed", "{\"id\":\"f\",\"name\":\"n\",\"error\":\"x\"}"),
                   "file.error", "is only allowed on file:failed");
    expect_refused(base("status:update"), "status", "is required for status:update");
    expect_refused(with(base("status:update"), "status", json_string("busy")), "status",
                   "is required for status:update");
    expect_refused(with(base("heartbeat"), "status", json_string("idle")), "status",
                   "is only allowed on status:update");
}

static void numbers_and_objects_keep_their_bounds(void **state)
{
    (void)state;
    expect_refused(with(base("pipeline:online"), "heartbeat_interval", json_integer(0)),
                   "heartbeat_interval", "must be a number of seconds above 0");
    expect_refused(with(base("pipeline:online"), "heartbeat_interval", json_integer(86401)),
                   "heartbeat_interval", "must be a number of seconds above 0, at most 86400");
    expect_accepted(with(base("pipeline:online"), "heartbeat_interval", json_real(0.5)),
                    RP_EV_PIPELINE_ONLINE);
    expect_accepted(with(base("pipeline:online"), "heartbeat_interval", json_integer(86400)),
                    RP_EV_PIPELINE_ONLINE);
    expect_refused(with(base("heartbeat"), "files_total", json_integer(-1)), "files_total",
                   "must be an integer >= 0");
    expect_refused(with(base("heartbeat"), "files_pending", json_real(1.5)), "files_pending",
                   "must be an integer >= 0");
    expect_accepted(with(base("heartbeat"), "files_pending", json_integer(0)), RP_EV_HEARTBEAT);
    expect_refused(with_file("file:completed", "{\"id\":\"f\",\"name\":\"n\",\"chunks\":-3}"),
                   "file.chunks", "must be an integer >= 0");
    expect_refused(with_file("file:processing", "{\"id\":\"f\",\"name\":\"n\",\"attempt\":0}"),
                   "file.attempt", "must be an integer >= 1");
    expect_refused(with_file("file:processing", "{\"id\":\"f\",\"name\":\"n\",\"size\":-1}"),
                   "file.size", "must be an integer >= 0");
    expect_refused(with(base("heartbeat"), "meta", json_string("x")), "meta", "must be an object");
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_refused(with(base("heartbeat"), "meta", json_pack("{s:s}", "k", big)), "meta",
                   "must be at most 4096 bytes of JSON");
    expect_accepted(with(base("heartbeat"), "meta", json_pack("{s:s}", "host", "ci")),
                    RP_EV_HEARTBEAT);
    expect_refused(failed_with(json_pack("{s:s,s:i}", "message", "m", "retryable", 1)),
                   "file.error.retryable", "must be true or false");
    expect_refused(failed_with(json_pack("{s:s}", "kind", "io")), "file.error.message",
                   "is required");
    expect_refused(failed_with(json_pack("{s:s,s:s}", "message", "m", "why", "x")), "file.error",
                   "has an unknown field");
}

static void unknown_fields_and_the_hubs_own_are_refused(void **state)
{
    (void)state;
    expect_refused(parse("[1]"), "", "an event must be a JSON object");
    expect_refused(with(base("heartbeat"), "colour", json_string("red")), "colour",
                   "is not a known field of an event");
    expect_refused(with(base("heartbeat"), "id", json_integer(7)), "id",
                   "is assigned by the hub; do not send it");
    expect_refused(with(base("heartbeat"), "ts", json_string("2026-01-01T00:00:00Z")), "ts",
                   "is assigned by the hub");
    expect_refused(with_file("file:processing", "{\"id\":\"f\",\"name\":\"n\",\"owner\":\"me\"}"),
                   "file.owner", "is not a known field of a file");
}

static void normalising_puts_the_hubs_fields_first_and_drops_nothing_known(void **state)
{
    (void)state;
    json_t *in = parse(
        "{\"meta\":{\"k\":1},\"file\":{\"error\":\"disk full\",\"name\":\"a.pdf\",\"id\":\"f1\","
        "\"chunks\":3},\"pipeline_type\":\"local_files\",\"message\":\"m\",\"pipeline_id\":\"docs-"
        "1\","
        "\"type\":\"file:failed\"}");
    rp_event_error_t err;
    assert_int_equal(rp_event_validate(in, &err), RP_EV_FILE_FAILED);
    json_t *out = rp_event_normalize(in, 42, 1767225600123LL);
    assert_non_null(out);
    json_decref(in);
    size_t len;
    char *s = rp_json_dump(out, &len);
    assert_non_null(s);
    assert_span(s, len,
                "{\"id\":42,\"ts\":\"2026-01-01T00:00:00.123Z\",\"type\":\"file:failed\","
                "\"pipeline_id\":\"docs-1\","
                "\"pipeline_type\":\"local_files\",\"message\":\"m\",\"file\":{\"id\":\"f1\","
                "\"name\":\"a.pdf\","
                "\"chunks\":3,\"error\":{\"message\":\"disk full\"}},\"meta\":{\"k\":1}}");
    free(s);
    json_decref(out);
    char ts[32];
    rp_event_format_ts(0, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00.000Z");
    rp_event_format_ts(1767225599999LL, ts);
    assert_string_equal(ts, "2025-12-31T23:59:59.999Z");
}

static void reals_dump_with_fifteen_digits(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:f,s:f}", "a", 0.4, "b", 1.0 / 3.0);
    char *s = rp_json_dump(j, NULL);
    assert_string_equal(s, "{\"a\":0.4,\"b\":0.333333333333333}");
    free(s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_a_traceback_in_every_free_text_field),
        cmocka_unit_test(counts_characters_not_bytes),
        cmocka_unit_test(refuses_control_characters_with_their_own_reason),
        cmocka_unit_test(refuses_invalid_utf8_with_its_own_reason),
        cmocka_unit_test(names_the_rule_that_failed_for_ids),
        cmocka_unit_test(file_deleted_names_a_file_and_carries_no_error),
        cmocka_unit_test(every_kind_is_accepted_in_its_smallest_form),
        cmocka_unit_test(each_kind_refuses_what_it_lacks_or_may_not_carry),
        cmocka_unit_test(numbers_and_objects_keep_their_bounds),
        cmocka_unit_test(unknown_fields_and_the_hubs_own_are_refused),
        cmocka_unit_test(normalising_puts_the_hubs_fields_first_and_drops_nothing_known),
        cmocka_unit_test(reals_dump_with_fifteen_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
