/*
 * test_json.c - request bodies: numbers keep the text they were written as,
 * also where jansson cannot hold them; positions in parse errors stay right.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "rest/rest.h"

static ds_rest_req_t req;
static json_t *body;

static ds_status_t parse(const char *text)
{
    if (req.ctx.arena)
        ds_arena_destroy(&req.ctx.arena);
    json_decref(body);
    body = NULL;
    memset(&req, 0, sizeof(req));
    req.ctx.arena = ds_arena_create();
    req.body = text;
    req.body_len = strlen(text);
    return ds_rest_body(&req, false, &body);
}

static void fini(void)
{
    json_decref(body);
    ds_arena_destroy(&req.ctx.arena);
}

TestSuite(json, .fini = fini);

static const char *text_of(json_t *v) { return ds_json_number_text(&req, v); }

Test(json, numbers_keep_their_literal_text)
{
    cr_assert_eq(parse("{\"a\": 1234567, \"b\": [9007199254740993, 0.1, -0, 1e300, 0.10, "
                       "12345678901234567890.123456789012345, 99999999999999999999, -1e400, 1E-400],"
                       " \"c\": {\"d\": \"5\", \"e\": 2.50e+1}}"),
                 DS_OK, "%s", req.ctx.err.message);
    cr_assert_str_eq(text_of(json_object_get(body, "a")), "1234567");
    json_t *b = json_object_get(body, "b");
    const char *want[] = {"9007199254740993", "0.1", "-0", "1e300", "0.10", "12345678901234567890.123456789012345",
                          "99999999999999999999", "-1e400", "1E-400"};
    cr_assert_eq(json_array_size(b), 9);
    for (size_t i = 0; i < 9; i++)
        cr_assert_str_eq(text_of(json_array_get(b, i)), want[i]);
    json_t *c = json_object_get(body, "c");
    cr_assert_null(text_of(json_object_get(c, "d")), "a string is not a number");
    cr_assert_str_eq(text_of(json_object_get(c, "e")), "2.50e+1");
}

Test(json, integers_beyond_int64_are_refused_where_an_int64_is_read)
{
    int64_t v;
    cr_assert_eq(parse("{\"limit\": 99999999999999999999, \"ok\": -9223372036854775808}"), DS_OK);
    cr_assert_eq(ds_json_int64(&req, body, "limit", 0, &v), DS_INVALID_ARGUMENT);
    cr_assert(strstr(req.ctx.err.message, "99999999999999999999") && strstr(req.ctx.err.message, "limit"),
              "%s", req.ctx.err.message);
    cr_assert_eq(ds_json_int64(&req, body, "ok", 0, &v), DS_OK);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(ds_json_int64(&req, body, "missing", 7, &v), DS_OK);
    cr_assert_eq(v, 7);
}

Test(json, strings_that_look_like_numbers_are_left_alone)
{
    cr_assert_eq(parse("{\"s\": \"1e400 \\\" 99999999999999999999\", \"n\": 1}"), DS_OK, "%s", req.ctx.err.message);
    cr_assert_str_eq(json_string_value(json_object_get(body, "s")), "1e400 \" 99999999999999999999");
    cr_assert_str_eq(text_of(json_object_get(body, "n")), "1");
}

Test(json, errors_keep_their_position)
{
    cr_assert_eq(parse("{\"a\": 99999999999999999999, \"b\": tru}"), DS_INVALID_ARGUMENT);
    cr_assert(strstr(req.ctx.err.message, "column 36") || strstr(req.ctx.err.message, "column 37"), "%s",
              req.ctx.err.message);
    cr_assert_eq(parse("{\"a\": 01}"), DS_INVALID_ARGUMENT);
    cr_assert_eq(parse("{\"a\": 1, \"a\": 2}"), DS_INVALID_ARGUMENT);
    cr_assert_eq(parse("[1]"), DS_INVALID_ARGUMENT);
}

/* Found by fuzz_json: the stand-in for a literal jansson cannot hold made invalid JSON valid ("8-9...9" -> "80"). */
Test(json, a_too_large_literal_glued_to_a_token_is_invalid_json)
{
    static const char *const bodies[] = {"{\"\":[8-9999999999999999998]}", "{\"\":[0.-98919999999999797999, 1]}",
                                         "{\"a\":1-1e400}", "{\"a\":--99999999999999999999}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cr_assert_eq(parse(bodies[i]), DS_INVALID_ARGUMENT, "%s: %s", bodies[i], req.ctx.err.message);
        cr_assert(strstr(req.ctx.err.message, "invalid JSON"), "%s: %s", bodies[i], req.ctx.err.message);
    }
    cr_assert_eq(parse("{\"a\":[1,-1e400,99999999999999999999]}"), DS_OK, "%s", req.ctx.err.message);
}
