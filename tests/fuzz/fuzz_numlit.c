/*
 * fuzz_numlit.c - numeric literals (src/core/numlit.c) against every numeric
 * type, and the type names themselves (ds_type_canonical). Input: a type name,
 * a newline, the literal. The literal is checked against the input's own type
 * when it is valid and against a fixed list of types; an accepted integer or
 * DECIMAL literal must fit DS_NUM_LIT_MAX and be accepted again unchanged.
 */
#include <stdint.h>

#include "core/numlit.h"
#include "core/types.h"
#include "fuzz_util.h"

static const char *const fixed[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                                    "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "DECIMAL(38,0)",
                                    "DECIMAL(38,37)", "DECIMAL(18,3)", "DECIMAL(4,2)", "DECIMAL(1,0)",
                                    "DECIMAL(38,38)", "FLOAT", "DOUBLE", "VARCHAR", "BOOLEAN"};

static void check(const char *text, const char *canonical)
{
    char out[DS_NUM_LIT_MAX], again[DS_NUM_LIT_MAX];
    const char *lit = NULL, *lit2 = NULL;
    ds_err_t err = {0};
    (void)ds_num_is_numeric_type(canonical);
    if (ds_num_for_type(text, canonical, "value", out, &lit, &err) != DS_OK)
        return;
    if (!lit)
        abort();
    if (lit == out) {
        if (strnlen(out, DS_NUM_LIT_MAX) == DS_NUM_LIT_MAX)
            abort();
        ds_err_clear(&err);
        /* The normal form is a fixed point: it is accepted and written the same way again. */
        if (ds_num_for_type(out, canonical, "value", again, &lit2, &err) != DS_OK || strcmp(out, lit2) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *type, *text;
    fz_split(data, size, '\n', &type, &text);
    char canonical[DS_TYPE_MAX];
    ds_err_t err = {0};
    if (ds_type_canonical(type, "c", canonical, &err) == DS_OK) {
        if (strnlen(canonical, DS_TYPE_MAX) == DS_TYPE_MAX)
            abort();
        (void)ds_type_is_string(canonical);
        check(text, canonical);
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check(text, fixed[i]);
    free(type);
    free(text);
    return 0;
}
