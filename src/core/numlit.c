/*
 * numlit.c - exact checks of number literals against numeric types (numlit.h).
 *
 * A literal [+-]digits[.digits][(e|E)[+-]digits] is read as its digit string
 * D (without the point) and the place of its point P (digits before the point
 * plus the exponent). The first and last non-zero digits of D then give the
 * number of integer and fractional digits of the exact value without building
 * it, so "1e999999999" is judged in constant space; the plain decimal is only
 * written once it is known to fit the type.
 */
#include "core/numlit.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool negative;
    const char *mant;   /* first mantissa character */
    size_t mant_len;    /* mantissa characters (digits and at most one '.') */
    int64_t point;      /* P: place of the decimal point in the digit string */
    int64_t first_nz;   /* index in the digit string of the first non-zero digit, -1 for zero */
    int64_t last_nz;    /* ... of the last non-zero digit */
} num_t;

#define EXP_CAP 1000000000LL

/* The i-th digit of the mantissa, skipping its point. */
static char digit_at(const num_t *n, int64_t i)
{
    for (size_t k = 0; k < n->mant_len; k++) {
        if (n->mant[k] == '.')
            continue;
        if (i-- == 0)
            return n->mant[k];
    }
    return '0';
}

static bool parse(const char *s, num_t *n)
{
    memset(n, 0, sizeof(*n));
    n->first_nz = n->last_nz = -1;
    if (*s == '-' || *s == '+')
        n->negative = *s++ == '-';
    n->mant = s;
    int64_t digits = 0, int_digits = -1;
    for (; isdigit((unsigned char)*s) || *s == '.'; s++) {
        if (*s == '.') {
            if (int_digits >= 0)
                return false;
            int_digits = digits;
            continue;
        }
        if (*s != '0') {
            if (n->first_nz < 0)
                n->first_nz = digits;
            n->last_nz = digits;
        }
        digits++;
    }
    n->mant_len = (size_t)(s - n->mant);
    if (digits == 0)
        return false;
    if (int_digits < 0)
        int_digits = digits;
    int64_t exp = 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        bool neg = false;
        if (*s == '-' || *s == '+')
            neg = *s++ == '-';
        if (!isdigit((unsigned char)*s))
            return false;
        for (; isdigit((unsigned char)*s); s++)
            if (exp < EXP_CAP)
                exp = exp * 10 + (*s - '0');
        if (neg)
            exp = -exp;
    }
    n->point = int_digits + exp;
    return *s == '\0';
}

/* Digits of the exact value before and after the point (0 and 0 for zero). */
static int64_t int_count(const num_t *n) { return n->first_nz >= 0 && n->point > n->first_nz ? n->point - n->first_nz : 0; }
static int64_t frac_count(const num_t *n) { return n->last_nz >= 0 && n->last_nz >= n->point ? n->last_nz - n->point + 1 : 0; }

/* Writes the exact value as a plain decimal; the caller checked that it fits out. */
static void plain(const num_t *n, char *out)
{
    int64_t ic = int_count(n), fc = frac_count(n);
    char *o = out;
    if (n->first_nz < 0) {
        strcpy(out, "0");
        return;
    }
    if (n->negative)
        *o++ = '-';
    if (ic == 0)
        *o++ = '0';
    for (int64_t place = ic - 1; place >= 0; place--) /* digit index of place p (10^p) is point-1-p */
        *o++ = digit_at(n, n->point - 1 - place);
    if (fc > 0) {
        *o++ = '.';
        for (int64_t k = 0; k < fc; k++) {
            int64_t i = n->point + k;
            *o++ = i < 0 ? '0' : digit_at(n, i);
        }
    }
    *o = '\0';
}

typedef struct {
    const char *name;
    const char *max;     /* largest value */
    const char *neg_max; /* magnitude of the smallest value, NULL when unsigned */
} int_type_t;

static const int_type_t int_types[] = {
    {"TINYINT", "127", "128"},
    {"SMALLINT", "32767", "32768"},
    {"INTEGER", "2147483647", "2147483648"},
    {"BIGINT", "9223372036854775807", "9223372036854775808"},
    {"HUGEINT", "170141183460469231731687303715884105727", "170141183460469231731687303715884105728"},
    {"UTINYINT", "255", NULL},
    {"USMALLINT", "65535", NULL},
    {"UINTEGER", "4294967295", NULL},
    {"UBIGINT", "18446744073709551615", NULL},
    {"UHUGEINT", "340282366920938463463374607431768211455", NULL},
};

static const int_type_t *int_type(const char *canonical)
{
    for (size_t i = 0; i < sizeof(int_types) / sizeof(int_types[0]); i++)
        if (strcmp(int_types[i].name, canonical) == 0)
            return &int_types[i];
    return NULL;
}

static bool decimal_type(const char *canonical, int *width, int *scale)
{
    return sscanf(canonical, "DECIMAL(%d,%d)", width, scale) == 2;
}

bool ds_num_is_numeric_type(const char *canonical)
{
    int w, s;
    return canonical && (int_type(canonical) || decimal_type(canonical, &w, &s) || strcmp(canonical, "DOUBLE") == 0 ||
                         strcmp(canonical, "FLOAT") == 0);
}

ds_status_t ds_num_for_type(const char *text, const char *canonical, const char *what, char out[DS_NUM_LIT_MAX],
                            const char **lit, ds_err_t *err)
{
    num_t n;
    const int_type_t *it = int_type(canonical);
    int width, scale;
    *lit = NULL;
    if (!text || !parse(text, &n))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: \"%.100s\" is not a number (compared as %s)", what,
                          text ? text : "", canonical);
    int64_t ic = int_count(&n), fc = frac_count(&n);
    if (it) {
        if (fc > 0)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: %.100s is not a whole number (compared as %s)", what,
                              text, canonical);
        const char *bound = n.negative ? it->neg_max : it->max;
        if (ic > 0) {
            char mag[DS_NUM_LIT_MAX];
            bool over = !bound || ic > (int64_t)strlen(bound);
            if (!over) {
                num_t pos = n;
                pos.negative = false;
                plain(&pos, mag);
                over = strlen(mag) == strlen(bound) && strcmp(mag, bound) > 0;
            }
            if (over)
                return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: %.100s is out of the range of %s (%s%s to %s)", what,
                                  text, canonical, it->neg_max ? "-" : "", it->neg_max ? it->neg_max : "0", it->max);
        }
        plain(&n, out);
        *lit = out;
        return DS_OK;
    }
    if (decimal_type(canonical, &width, &scale)) {
        if (fc > scale)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: %.100s has more than %d decimal places (compared as %s)",
                              what, text, scale, canonical);
        if (ic > width - scale)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: %.100s is too large for %s (at most %d digits before "
                              "the decimal point)", what, text, canonical, width - scale);
        plain(&n, out);
        *lit = out;
        return DS_OK;
    }
    bool is_float = strcmp(canonical, "FLOAT") == 0;
    if (is_float || strcmp(canonical, "DOUBLE") == 0) {
        errno = 0;
        double d = is_float ? (double)strtof(text, NULL) : strtod(text, NULL);
        if (isinf(d) || (d == 0 && n.first_nz >= 0))
            return ds_err_set(err, DS_INVALID_ARGUMENT, "%s: %.100s is %s for %s", what, text,
                              isinf(d) ? "too large" : "too small (it would be 0)", canonical);
        *lit = text;
        return DS_OK;
    }
    return ds_err_set(err, DS_INTERNAL, "%s: %s is not a numeric type", what, canonical);
}
