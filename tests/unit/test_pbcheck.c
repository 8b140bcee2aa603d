/*
 * test_pbcheck.c - protobuf input checked before decoding (grpc/pbcheck.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "grpc/pbcheck.h"

static ds_err_t err;

Test(pbcheck, nul_in_a_string_is_refused_naming_the_field)
{
    const uint8_t bytes[] = {0x0a, 0x03, 'a', 0x00, 'b'}; /* StringValue.value = "a\0b" */
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_pb_check(&google__protobuf__string_value__descriptor, bytes, sizeof(bytes), NULL, "command", &err),
                 DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "command.value") && strstr(err.message, "NUL"), "%s", err.message);
    /* The decoder alone would have cut the text: this is what the check prevents. */
    Google__Protobuf__StringValue *sv =
        google__protobuf__string_value__unpack(NULL, sizeof(bytes), bytes);
    cr_assert_not_null(sv);
    cr_assert_str_eq(sv->value, "a");
    google__protobuf__string_value__free_unpacked(sv, NULL);
}

/*
 * protobuf-c gives an empty bytes field (the value of an Any holding an empty
 * command) as NULL and length 0; the check used to compute NULL + 0, undefined
 * behaviour that UBSan reports (found by tests/fuzz/fuzz_driver).
 */
Test(pbcheck, an_empty_message_given_as_null_passes)
{
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_pb_check(&google__protobuf__struct__descriptor, NULL, 0, NULL, "command", &err), DS_OK);
    cr_assert_eq(err.status, DS_OK);
}

Test(pbcheck, clean_strings_and_bytes_pass)
{
    const uint8_t s[] = {0x0a, 0x03, 'a', 'b', 'c'};
    const uint8_t b[] = {0x0a, 0x03, 'a', 0x00, 'c'}; /* BytesValue may hold NUL */
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_pb_check(&google__protobuf__string_value__descriptor, s, sizeof(s), NULL, "", &err), DS_OK);
    cr_assert_eq(ds_pb_check(&google__protobuf__bytes_value__descriptor, b, sizeof(b), NULL, "", &err), DS_OK);
}

/* Value{list_value: ListValue{values: Value{...}}} nested `levels` times, innermost a string "x". */
static size_t nest(uint8_t *buf, size_t cap, int levels)
{
    uint8_t tmp[4096];
    size_t n = 0;
    tmp[n++] = 0x1a; /* Value.string_value (3) */
    tmp[n++] = 1;
    tmp[n++] = 'x';
    for (int i = 0; i < levels; i++) {
        uint8_t list[4096];
        size_t m = 0;
        list[m++] = 0x0a; /* ListValue.values (1) */
        list[m++] = (uint8_t)n;
        memcpy(list + m, tmp, n);
        m += n;
        n = 0;
        tmp[n++] = 0x32; /* Value.list_value (6) */
        tmp[n++] = (uint8_t)m;
        memcpy(tmp + n, list, m);
        n += m;
        cr_assert(n < 120, "keep lengths one byte");
    }
    cr_assert(n <= cap);
    memcpy(buf, tmp, n);
    return n;
}

Test(pbcheck, nesting_beyond_the_limit_is_refused)
{
    uint8_t buf[256];
    ds_pb_limits_t lim = {.max_depth = 6, .max_repeated = 100};
    size_t n = nest(buf, sizeof(buf), 3); /* 7 message levels: within 6 below the top */
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_pb_check(&google__protobuf__value__descriptor, buf, n, &lim, "v", &err), DS_OK, "%s", err.message);
    n = nest(buf, sizeof(buf), 10);
    cr_assert_eq(ds_pb_check(&google__protobuf__value__descriptor, buf, n, &lim, "v", &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "nested deeper than 6"), "%s", err.message);
}

Test(pbcheck, repeated_fields_beyond_the_limit_are_refused)
{
    uint8_t buf[1024];
    size_t n = 0;
    for (int i = 0; i < 20; i++) { /* ListValue.values x 20, each Value{bool_value: true} */
        buf[n++] = 0x0a;
        buf[n++] = 2;
        buf[n++] = 0x20; /* Value.bool_value (4) */
        buf[n++] = 1;
    }
    ds_pb_limits_t lim = {.max_depth = 8, .max_repeated = 20};
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_pb_check(&google__protobuf__list_value__descriptor, buf, n, &lim, "l", &err), DS_OK);
    lim.max_repeated = 19;
    cr_assert_eq(ds_pb_check(&google__protobuf__list_value__descriptor, buf, n, &lim, "l", &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "l.values") && strstr(err.message, "more than 19"), "%s", err.message);
}

Test(pbcheck, malformed_input_is_left_to_the_decoder)
{
    const uint8_t bad[] = {0x0a, 0x7f, 'a'}; /* length beyond the end */
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_pb_check(&google__protobuf__string_value__descriptor, bad, sizeof(bad), NULL, "", &err), DS_OK);
}
