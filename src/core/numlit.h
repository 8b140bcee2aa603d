/*
 * numlit.h - numbers as clients wrote them, checked against a column type.
 *
 * A filter value reaches SQL as the text the client wrote (JSON numbers keep
 * their literal text, see rest/json.c; protobuf filter values are strings).
 * Before a value is compared with a numeric column it is checked here: it
 * must be a decimal number (sign, digits, fraction, exponent) that the type
 * holds exactly, or the caller answers 400 naming the value. Nothing is
 * ever rounded on the way: integers of any size and decimals of any length
 * are compared exactly, and a value a type cannot hold (2^64 for BIGINT,
 * 0.125 for DECIMAL(10,2), 0.5 for INTEGER, 1e400 for DOUBLE) is an error,
 * not a silently different number. Pure, thread-safe.
 */
#ifndef DS_CORE_NUMLIT_H
#define DS_CORE_NUMLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* Room for every literal ds_num_for_type writes (HUGEINT and DECIMAL(38,s) values with sign and point). */
#define DS_NUM_LIT_MAX 48

/* True when canonical (core/types.h) is an integer, DECIMAL, FLOAT or DOUBLE type. */
bool ds_num_is_numeric_type(const char *canonical);

/*
 * Checks text against the numeric canonical type and sets *lit to the SQL
 * literal text to cast to that type: for integer and DECIMAL types the exact
 * value as a plain decimal without exponent or redundant zeros ("1.50e2" ->
 * "150", "-0" -> "0"), written into out; for FLOAT and DOUBLE, text itself.
 * what names the value's place for messages ("filter on \"id\"").
 * DS_INVALID_ARGUMENT naming the value and the type when text is not a number
 * or the type cannot hold its value exactly.
 */
ds_status_t ds_num_for_type(const char *text, const char *canonical, const char *what, char out[DS_NUM_LIT_MAX],
                            const char **lit, ds_err_t *err);

#endif
