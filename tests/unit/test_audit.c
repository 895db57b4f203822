/* api/audit: what an audit entry says about a request, never a secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../api/audit.h"

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

/* changes equals the JSON in want (key order aside). */
static void assert_changes(json_t *changes, const char *want)
{
    assert_non_null(changes);
    json_t *expected = parse(want);
    if (!json_equal(changes, expected)) {
        char *got = json_dumps(changes, JSON_SORT_KEYS);
        fail_msg("changes %s, want %s", got, want);
    }
    json_decref(expected);
    json_decref(changes);
}

static void secrets_are_dropped_at_any_depth(void **state)
{
    (void)state;
    json_t *body = parse("{\"email\":\"a@b.c\",\"password\":\"hunter22hunter\","
                         "\"current_password\":\"x\",\"password_hash\":\"$s$\",\"token\":\"t\","
                         "\"token_hash\":\"h\",\"secret\":\"s\",\"name\":\"A\","
                         "\"params\":{\"token\":\"t2\",\"state\":\"off\","
                         "\"list\":[{\"secret\":1,\"keep\":2},3]}}");
    assert_changes(audit_changes(body),
                   "{\"email\":\"a@b.c\",\"name\":\"A\","
                   "\"params\":{\"state\":\"off\",\"list\":[{\"keep\":2},3]}}");
    json_decref(body);
}

static void other_members_are_copied_as_they_are(void **state)
{
    (void)state;
    json_t *body = parse("{\"max_hourly_kwh\":2.5,\"owner_id\":null,\"serial\":\"A-1\","
                         "\"passwords\":\"not a secret's name\"}");
    json_t *changes = audit_changes(body);
    assert_ptr_not_equal(changes, body); /* a copy: the request's body stays the request's */
    assert_changes(changes, "{\"max_hourly_kwh\":2.5,\"owner_id\":null,\"serial\":\"A-1\","
                            "\"passwords\":\"not a secret's name\"}");
    json_decref(body);
}

static void no_body_is_an_empty_object(void **state)
{
    (void)state;
    assert_changes(audit_changes(NULL), "{}");
}

static void a_note_carries_the_request(void **state)
{
    (void)state;
    struct request req = {.request_id = "req-1",
                          .client_ip = "192.0.2.7",
                          .caller = {.kind = CALLER_USER, .user_id = 42}};
    struct audit_note note;
    assert_true(audit_note_init(&note, &req, json_pack("{s:s}", "name", "x")));
    assert_int_equal(note.ctx.actor_id, 42);
    assert_string_equal(note.ctx.client_addr, "192.0.2.7");
    assert_string_equal(note.ctx.request_id, "req-1");
    assert_string_equal(note.ctx.changes, "{\"name\":\"x\"}");
    audit_note_free(&note);
    assert_null(note.changes_text);
}

static void an_unknown_client_or_caller_is_null(void **state)
{
    (void)state;
    struct request req = {.request_id = "req-2", .client_ip = "unknown"};
    struct audit_note note;
    assert_true(audit_note_init(&note, &req, NULL));
    assert_int_equal(note.ctx.actor_id, 0);
    assert_null(note.ctx.client_addr);
    assert_null(note.ctx.changes); /* stored as {} */
    audit_note_free(&note);
    /* A device is no actor: the column names users. */
    req.caller = (struct caller){.kind = CALLER_DEVICE, .device_id = 9};
    assert_true(audit_note_init(&note, &req, NULL));
    assert_int_equal(note.ctx.actor_id, 0);
    audit_note_free(&note);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secrets_are_dropped_at_any_depth),
        cmocka_unit_test(other_members_are_copied_as_they_are),
        cmocka_unit_test(no_body_is_an_empty_object),
        cmocka_unit_test(a_note_carries_the_request),
        cmocka_unit_test(an_unknown_client_or_caller_is_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
