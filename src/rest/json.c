/*
 * json.c - request body parsing and typed field access with errors that
 * name the field.
 *
 * DESIGN (numbers)
 * jansson keeps a JSON number as a C int64 or double and refuses integers
 * beyond int64, so 9007199254740993, 0.1000000000000000000001 or
 * 99999999999999999999 cannot reach SQL through it exactly. ds_rest_body
 * therefore scans the body for number literals first (outside strings, in
 * document order) and keeps their text. Literals jansson would refuse
 * (integers beyond int64, reals beyond double) are overwritten in a copy of
 * the body by a placeholder of the same kind ("0", "0.0") between spaces, so
 * positions in parse errors stay right and the placeholder cannot join the
 * token before it (a fuzzer found "[8-99999999999999999999]", invalid JSON,
 * turned into a valid "[80 ...]"; such literals are 5 characters at least).
 * After parsing, the tree is walked in document order (jansson keeps
 * objects' insertion order and duplicate keys are refused) and each number
 * node is paired with its literal; a count or value that does not agree
 * fails the request rather than guess.
 * ds_json_number_text gives the literal; ds_json_int64 refuses placeholders
 * with a 400 naming the value. Nothing reads a number of the body through
 * json_integer_value/json_real_value when the exact value matters.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rest/rest.h"

struct ds_json_num {
    const json_t *node;
    const char *text; /* the literal as written (arena) */
    bool fits;        /* jansson holds the value itself (false: a placeholder) */
};

typedef struct {
    size_t off, len;
    bool real, fits;
} lit_t;

/* End of the JSON number starting at s[i] (strict grammar), or i when there is none. */
static size_t number_end(const char *s, size_t n, size_t i, bool *real)
{
    size_t j = i;
    *real = false;
    if (j < n && s[j] == '-')
        j++;
    if (j >= n || s[j] < '0' || s[j] > '9')
        return i;
    if (s[j] == '0')
        j++;
    else
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
    if (j + 1 < n && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9') {
        *real = true;
        for (j++; j < n && s[j] >= '0' && s[j] <= '9'; j++)
            ;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k < n && s[k] >= '0' && s[k] <= '9') {
            *real = true;
            for (j = k; j < n && s[j] >= '0' && s[j] <= '9'; j++)
                ;
        }
    }
    return j;
}

/* Whether jansson holds the literal's value (it refuses integers beyond int64 and reals beyond double). */
static bool literal_fits(const char *text, bool real)
{
    errno = 0;
    if (real) {
        double d = strtod(text, NULL);
        return !(errno == ERANGE && isinf(d));
    }
    (void)strtoll(text, NULL, 10);
    return errno != ERANGE;
}

/* Appends every number literal of s[0..n) outside strings to *lits (malloc'd; the caller frees). */
static bool scan_numbers(ds_arena_t *a, const char *s, size_t n, lit_t **lits, const char ***texts, size_t *count)
{
    size_t cap = 0;
    bool in_str = false;
    *lits = NULL;
    *texts = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9'))
            continue;
        bool real;
        size_t end = number_end(s, n, i, &real);
        if (end == i)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            lit_t *l = realloc(*lits, sizeof(lit_t) * cap);
            const char **t = realloc((void *)*texts, sizeof(char *) * cap);
            if (l)
                *lits = l;
            if (t)
                *texts = t;
            if (!l || !t)
                return false;
        }
        const char *text = ds_arena_strndup(a, s + i, end - i);
        if (!text)
            return false;
        (*lits)[*count] = (lit_t){.off = i, .len = end - i, .real = real, .fits = literal_fits(text, real)};
        (*texts)[(*count)++] = text;
        i = end - 1;
    }
    return true;
}

typedef struct {
    struct ds_json_num *items;
    const lit_t *lits;
    const char *const *texts;
    size_t n, next;
    bool ok;
} pair_t;

/* Pairs the number nodes under v, in document order, with the scanned literals. */
static void pair_numbers(pair_t *p, const json_t *v)
{
    if (!p->ok)
        return;
    if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e) pair_numbers(p, e);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            pair_numbers(p, json_array_get(v, i));
    } else if (json_is_number(v)) {
        if (p->next >= p->n || json_is_real(v) != p->lits[p->next].real) {
            p->ok = false;
            return;
        }
        const lit_t *l = &p->lits[p->next];
        const char *text = p->texts[p->next];
        if (l->fits && (json_is_integer(v) ? json_integer_value(v) != strtoll(text, NULL, 10)
                                           : json_real_value(v) != strtod(text, NULL)))
            p->ok = false;
        p->items[p->next++] = (struct ds_json_num){.node = v, .text = text, .fits = l->fits};
    }
}

static int cmp_num(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct ds_json_num *)a)->node, y = (uintptr_t)((const struct ds_json_num *)b)->node;
    return x < y ? -1 : x > y;
}

static const struct ds_json_num *find_num(const ds_rest_req_t *req, const json_t *v)
{
    struct ds_json_num key = {.node = v};
    return req->n_nums ? bsearch(&key, req->nums, req->n_nums, sizeof(key), cmp_num) : NULL;
}

ds_status_t ds_rest_body(ds_rest_req_t *req, bool allow_empty, json_t **out)
{
    *out = NULL;
    size_t n = req->body_len;
    while (n && (req->body[n - 1] == ' ' || req->body[n - 1] == '\n' || req->body[n - 1] == '\r'))
        n--;
    if (n == 0) {
        if (allow_empty) {
            *out = json_object();
            return DS_OK;
        }
        return ds_err_set(&req->ctx.err, DS_INVALID_ARGUMENT, "request body is empty; a JSON object is expected");
    }
    lit_t *lits;
    const char **texts;
    size_t count;
    if (!scan_numbers(req->ctx.arena, req->body, req->body_len, &lits, &texts, &count)) {
        free(lits);
        free((void *)texts);
        return ds_err_set(&req->ctx.err, DS_INTERNAL, "out of memory reading the request body");
    }
    bool refused = false;
    for (size_t i = 0; i < count; i++)
        refused = refused || !lits[i].fits;
    char *copy = refused ? malloc(req->body_len) : NULL;
    if (refused && !copy) {
        free(lits);
        free((void *)texts);
        return ds_err_set(&req->ctx.err, DS_INTERNAL, "out of memory reading the request body");
    }
    if (copy) {
        memcpy(copy, req->body, req->body_len);
        for (size_t i = 0; i < count; i++)
            if (!lits[i].fits) {
                memset(copy + lits[i].off, ' ', lits[i].len);
                memcpy(copy + lits[i].off + 1, lits[i].real ? "0.0" : "0", lits[i].real ? 3 : 1);
            }
    }
    json_error_t je;
    json_t *j = json_loadb(copy ? copy : req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    free(copy);
    if (!j) {
        free(lits);
        free((void *)texts);
        return ds_err_set(&req->ctx.err, DS_INVALID_ARGUMENT, "invalid JSON at line %d, column %d: %s", je.line,
                          je.column, je.text);
    }
    if (!json_is_object(j)) {
        free(lits);
        free((void *)texts);
        json_decref(j);
        return ds_err_set(&req->ctx.err, DS_INVALID_ARGUMENT, "request body must be a JSON object");
    }
    pair_t p = {.items = ds_arena_alloc(req->ctx.arena, sizeof(struct ds_json_num) * (count ? count : 1)),
                .lits = lits,
                .texts = texts,
                .n = count,
                .ok = true};
    p.ok = p.items != NULL;
    pair_numbers(&p, j);
    free(lits);
    free((void *)texts);
    if (!p.ok || p.next != count) {
        json_decref(j);
        ds_log(DS_LOG_ERROR, "rest: the numbers of a request body could not be paired with their literals");
        return ds_err_set(&req->ctx.err, DS_INTERNAL, "the numbers of the request body could not be read exactly");
    }
    qsort(p.items, count, sizeof(struct ds_json_num), cmp_num);
    req->nums = p.items;
    req->n_nums = count;
    *out = j;
    return DS_OK;
}

const char *ds_json_number_text(ds_rest_req_t *req, const json_t *v)
{
    if (!json_is_number(v))
        return NULL;
    const struct ds_json_num *n = find_num(req, v);
    if (n)
        return n->text;
    /* A number the server made itself, not the client: its own value is exact. */
    return json_is_integer(v) ? ds_arena_printf(req->ctx.arena, "%lld", (long long)json_integer_value(v))
                              : ds_arena_printf(req->ctx.arena, "%.17g", json_real_value(v));
}

ds_status_t ds_json_int64(ds_rest_req_t *req, json_t *obj, const char *field, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(obj, field);
    *out = def;
    if (!v || json_is_null(v))
        return DS_OK;
    if (!json_is_integer(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be an integer", field);
    const struct ds_json_num *n = find_num(req, v);
    if (n && !n->fits)
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field,
                           "field \"%s\": %.100s is out of range (%lld to %lld)", field, n->text,
                           (long long)INT64_MIN, (long long)INT64_MAX);
    *out = json_integer_value(v);
    return DS_OK;
}

ds_status_t ds_json_str(ds_rest_req_t *req, json_t *obj, const char *field, bool required, const char **out)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" is required", field);
        return DS_OK;
    }
    if (!json_is_string(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be a string", field);
    *out = ds_arena_strdup(req->ctx.arena, json_string_value(v));
    return DS_OK;
}

ds_status_t ds_json_bool(ds_rest_req_t *req, json_t *obj, const char *field, bool def, bool *out)
{
    json_t *v = json_object_get(obj, field);
    *out = def;
    if (!v || json_is_null(v))
        return DS_OK;
    if (!json_is_boolean(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be true or false", field);
    *out = json_is_true(v);
    return DS_OK;
}

ds_status_t ds_json_str_array(ds_rest_req_t *req, json_t *obj, const char *field, const char ***out, size_t *n)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v))
        return DS_OK;
    if (!json_is_array(v))
        return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" must be an array of strings",
                           field);
    size_t len = json_array_size(v);
    const char **arr = ds_arena_alloc(req->ctx.arena, sizeof(char *) * (len ? len : 1));
    if (!arr)
        return ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, field, "field \"%s\" item %zu must be a string",
                               field, i);
        arr[i] = ds_arena_strdup(req->ctx.arena, json_string_value(e));
    }
    *out = arr;
    *n = len;
    return DS_OK;
}

ds_status_t ds_json_only(ds_rest_req_t *req, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (!ok)
            return ds_err_setf(&req->ctx.err, DS_INVALID_ARGUMENT, key, "unknown field \"%s\"", key);
    }
    return DS_OK;
}

json_t *ds_json_time(int64_t unix_s)
{
    if (unix_s <= 0)
        return json_null();
    char buf[40];
    ds_time_rfc3339(unix_s, buf, sizeof(buf));
    return json_string(buf);
}

void ds_rest_buf_rows(ds_buf_t *b, const char *const *const *rows, size_t n_rows, size_t n_columns)
{
    DS_BUF_LIT(b, "[");
    for (size_t r = 0; r < n_rows; r++) {
        if (r)
            DS_BUF_LIT(b, ",");
        DS_BUF_LIT(b, "[");
        for (size_t c = 0; c < n_columns; c++) {
            const char *v = rows[r][c];
            if (c)
                DS_BUF_LIT(b, ",");
            if (!v)
                DS_BUF_LIT(b, "null");
            else if (ds_utf8_valid(v))
                ds_buf_json_str(b, v);
            else
                DS_BUF_LIT(b, "\"(invalid UTF-8)\"");
        }
        DS_BUF_LIT(b, "]");
    }
    DS_BUF_LIT(b, "]");
}

ds_status_t ds_rest_buf_answer(ds_rest_req_t *req, ds_rest_resp_t *resp, ds_buf_t *b)
{
    DS_BUF_LIT(b, "\n");
    size_t len = b->len;
    if (!(resp->raw = ds_buf_steal(b)))
        return ds_err_set(&req->ctx.err, DS_UNAVAILABLE, "out of memory");
    resp->raw_len = len;
    resp->content_type = "application/json";
    return DS_OK;
}
