/*
 * ident.c - identifier grammar checks and quoting. See ident.h.
 */
#include "core/ident.h"

#include <string.h>
#include <strings.h>

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* True when every byte of s is alnum or in extra, and 1 <= len <= max. */
static bool all_of(const char *s, const char *extra, size_t max)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        if (n >= max)
            return false;
        if (!is_alnum(s[n]) && !strchr(extra, s[n]))
            return false;
    }
    return n > 0;
}

ds_status_t ds_ident_check_project(const char *id, ds_err_t *err)
{
    if (!all_of(id, "_-", DS_PROJECT_ID_MAX))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "project_id",
                           "invalid project id \"%.80s\": use 1-64 characters of A-Z a-z 0-9 _ -",
                           id ? id : "");
    return DS_OK;
}

static const char *reserved_schemas[] = {"main", "information_schema", "pg_catalog", "temp",
                                         "system", NULL};

ds_status_t ds_ident_check_bucket(const char *id, const char *field, ds_err_t *err)
{
    if (!all_of(id, "_.-", DS_BUCKET_ID_MAX))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, field,
                           "invalid bucket id \"%.100s\": use 1-96 characters of A-Z a-z 0-9 _ . -",
                           id ? id : "");
    if (id[0] == '_' || id[0] == '.' || strstr(id, ".."))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, field,
                           "invalid bucket id \"%s\": it may not start with \"_\" or \".\" or contain \"..\"",
                           id);
    for (int i = 0; reserved_schemas[i]; i++)
        if (strcasecmp(id, reserved_schemas[i]) == 0)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, field,
                               "invalid bucket id \"%s\": the name is reserved", id);
    return DS_OK;
}

ds_status_t ds_ident_check_stage(const char *stage, ds_err_t *err)
{
    if (!stage || (strcmp(stage, "in") != 0 && strcmp(stage, "out") != 0))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "stage",
                           "invalid bucket stage \"%.40s\": use \"in\" or \"out\"",
                           stage ? stage : "");
    return DS_OK;
}

ds_status_t ds_ident_check_bucket_name(const char *name, ds_err_t *err)
{
    if (!all_of(name, "_-", DS_NAME_MAX))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "name",
                           "invalid bucket name \"%.80s\": use 1-64 characters of A-Z a-z 0-9 _ -",
                           name ? name : "");
    return DS_OK;
}

ds_status_t ds_ident_check_name(const char *name, const char *what, ds_err_t *err)
{
    if (!all_of(name, "_", DS_NAME_MAX))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, what,
                           "invalid %s name \"%.80s\": use 1-64 characters of A-Z a-z 0-9 _", what,
                           name ? name : "");
    bool digits = true;
    for (const char *p = name; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    if (digits)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, what,
                           "invalid %s name \"%s\": it may not consist of digits only", what, name);
    if (strncasecmp(name, "_ds", 3) == 0 || strcasecmp(name, "_timestamp") == 0)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, what,
                           "invalid %s name \"%s\": the name is reserved", what, name);
    /* A column named rowid hides the engine's row id, which imports, deletes and time travel select rows by. */
    if (strcmp(what, "column") == 0 && strcasecmp(name, "rowid") == 0)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, what,
                           "invalid column name \"%s\": the name is reserved (the engine's row id)", name);
    return DS_OK;
}

ds_status_t ds_ident_check_file_key(const char *key, ds_err_t *err)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > 1024)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "name", "invalid file key: use 1-1024 characters");
    if (key[0] == '/')
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "name",
                           "invalid file key \"%.200s\": it may not be an absolute path", key);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "name",
                               "invalid file key: control characters and backslashes are not allowed");
    }
    /* Check every path segment: none may be empty, "." or "..". */
    const char *seg = key;
    while (seg) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        bool last = slash == NULL;
        if ((len == 0 && !last) || (len == 1 && seg[0] == '.') ||
            (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "name",
                               "invalid file key \"%.200s\": segments may not be empty, \".\" or \"..\"",
                               key);
        seg = slash ? slash + 1 : NULL;
    }
    return DS_OK;
}

bool ds_ident_quote(const char *name, char *out, size_t outsz)
{
    size_t o = 0;
    if (!out || outsz < 3 || !name)
        goto fail;
    out[o++] = '"';
    for (const char *p = name; *p; p++) {
        if (*p == '"') {
            if (o + 2 >= outsz)
                goto fail;
            out[o++] = '"';
        }
        if (o + 1 >= outsz)
            goto fail;
        out[o++] = *p;
    }
    if (o + 2 > outsz)
        goto fail;
    out[o++] = '"';
    out[o] = '\0';
    return true;
fail:
    if (out && outsz)
        out[0] = '\0';
    return false;
}

bool ds_sql_literal(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    if (!out || outsz < 3 || !s)
        goto fail;
    out[o++] = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            if (o + 2 >= outsz)
                goto fail;
            out[o++] = '\'';
        }
        if (o + 1 >= outsz)
            goto fail;
        out[o++] = *p;
    }
    if (o + 2 > outsz)
        goto fail;
    out[o++] = '\'';
    out[o] = '\0';
    return true;
fail:
    if (out && outsz)
        out[0] = '\0';
    return false;
}
