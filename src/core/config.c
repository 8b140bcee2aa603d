/*
 * config.c - defaults, env vars, flags and validation of ds_config_t. See config.h.
 *
 * DESIGN
 * DS_CONFIG_MAP expands once into settings[], a table of rows holding each
 * setting's env var, flag, kind, default, help and the offset of its field in
 * ds_config_t. Defaults, env vars and flags all go through one function,
 * set_value(), which parses the text by kind and stores it at that offset; so
 * a setting added to the map is at once defaulted, read from the environment,
 * accepted as a flag and listed by --help, with nothing else to edit.
 * A compile-time check ties each row's kind to its field's C type, so the
 * offset arithmetic cannot write an int64_t into a char * field.
 *
 * Invariants:
 * - A string field is either NULL ("unset") or a malloc'd, non-empty string
 *   owned by the config. An empty value ("" default, DUCKSTORE_ADMIN_KEY=)
 *   stores NULL.
 * - A value is parsed completely before the field is touched, so a failed
 *   set leaves the config as it was and still safe to free.
 * - Parse errors name where the value came from (the env var or the flag);
 *   validation errors name both, since the value may have come from either.
 *
 * Pure apart from malloc: the environment arrives through a callback, and
 * nothing here keeps state between calls. Thread-safe on distinct configs.
 */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name; /* the ds_config_t field, e.g. "data_dir" */
    const char *env;
    const char *flag; /* without the leading "--" */
    ds_cfg_kind_t kind;
    const char *def;
    const char *help;
    size_t offset;
} ds_cfg_row_t;

static const ds_cfg_row_t settings[] = {
#define DS_CFG_ROW(field, env, flag, kind, def, help)                                              \
    {#field, env, flag, kind, def, help, offsetof(ds_config_t, field)},
    DS_CONFIG_MAP(DS_CFG_ROW)
#undef DS_CFG_ROW
};

#define DS_CFG_COUNT (sizeof(settings) / sizeof(settings[0]))

/* Each row's kind must match its field's type; set_value relies on it. */
#define DS_CFG_TYPECHECK(field, env, flag, kind, def, help)                                        \
    _Static_assert(_Generic(((ds_config_t *)0)->field,                                            \
                       char *: (kind) == DS_CFG_STR,                                              \
                       int64_t: (kind) == DS_CFG_INT || (kind) == DS_CFG_BYTES ||                 \
                                    (kind) == DS_CFG_DURATION || (kind) == DS_CFG_RATIO,          \
                       ds_log_level_t: (kind) == DS_CFG_LOGLEVEL,                                 \
                       default: 0),                                                               \
                   "DS_CONFIG_MAP: kind of " #field " does not match its type in ds_config_t");
DS_CONFIG_MAP(DS_CFG_TYPECHECK)
#undef DS_CFG_TYPECHECK

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* A parsed value, held until it is known to be good. */
typedef struct {
    char *s; /* DS_CFG_STR: malloc'd or NULL */
    int64_t i;
    ds_log_level_t level;
} ds_cfg_value_t;

static char **str_field(ds_config_t *cfg, const ds_cfg_row_t *r)
{
    return (char **)(void *)((char *)cfg + r->offset);
}

static int64_t *int_field(ds_config_t *cfg, const ds_cfg_row_t *r)
{
    return (int64_t *)(void *)((char *)cfg + r->offset);
}

static ds_log_level_t *level_field(ds_config_t *cfg, const ds_cfg_row_t *r)
{
    return (ds_log_level_t *)(void *)((char *)cfg + r->offset);
}

/*
 * Reads a run of decimal digits at *p into *out, advancing *p. False when there
 * is no digit or the number exceeds INT64_MAX. Signs and spaces are not digits.
 */
static bool read_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

/* A whole-string signed decimal integer; the sign is allowed so validation can say "too small". */
static bool parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    int64_t v;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (!read_digits(&s, &v) || *s != '\0')
        return false;
    *out = neg ? -v : v;
    return true;
}

static bool mul_fits(int64_t v, int64_t mult, int64_t *out)
{
    if (v > INT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

bool ds_parse_bytes(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"kb", 1000LL},
        {"mb", 1000LL * 1000},
        {"gb", 1000LL * 1000 * 1000},
        {"tb", 1000LL * 1000 * 1000 * 1000},
        {"kib", 1LL << 10},
        {"mib", 1LL << 20},
        {"gib", 1LL << 30},
        {"tib", 1LL << 40},
    };
    int64_t v;
    if (!s || !out || !read_digits(&s, &v))
        return false;
    if (strcmp(s, "%") == 0) {
        if (v < 1 || v > 100)
            return false;
        *out = -v;
        return true;
    }
    /* "4 GB" is accepted as DuckDB's own memory_limit setting accepts it. */
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(s, units[i].unit) == 0)
            return mul_fits(v, units[i].mult, out);
    return false;
}

bool ds_parse_duration(const char *s, int64_t *out)
{
    int64_t v, mult;
    if (!s || !out || !read_digits(&s, &v))
        return false;
    switch (tolower((unsigned char)s[0])) {
    case '\0': mult = 1; break;
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    default: return false;
    }
    if (s[0] != '\0' && s[1] != '\0')
        return false;
    return mul_fits(v, mult, out);
}

static bool is_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

bool ds_parse_addr(const char *s, char *host, int hostsz, int *port)
{
    const char *h, *colon;
    size_t hlen;
    int64_t p;
    if (!s)
        return false;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0 || memchr(h, '[', hlen) || !memchr(h, ':', hlen))
            return false;
        /* Hex digits, colons, dots (IPv4-mapped) and a "%eth0" zone id. */
        for (size_t i = 0; i < hlen; i++)
            if (!isalnum((unsigned char)h[i]) && h[i] != ':' && h[i] != '.' && h[i] != '%')
                return false;
    } else {
        /* A bare IPv6 address would make the port ambiguous, hence one colon only. */
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return false;
        h = s;
        hlen = (size_t)(colon - s);
        if (hlen == 0)
            return false;
        for (size_t i = 0; i < hlen; i++)
            if (!is_host_char(h[i]))
                return false;
    }
    const char *ps = colon + 1;
    if (!read_digits(&ps, &p) || *ps != '\0' || p < 1 || p > 65535)
        return false;
    if (host) {
        if (hostsz <= 0 || hlen >= (size_t)hostsz)
            return false;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = (int)p;
    return true;
}

/* Parses a fraction from 0 to 1 ("0.25", "1") into millionths. */
static bool parse_ratio(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    double r = strtod(s, &end);
    if (errno || *end || !(r >= 0 && r <= 1))
        return false;
    *out = (int64_t)(r * 1e6 + 0.5);
    return true;
}

static bool parse_level(const char *s, ds_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (ds_log_level_t)i;
            return true;
        }
    return false;
}

const char *ds_log_level_name(ds_log_level_t l)
{
    if ((unsigned)l >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[l];
}

/*
 * Parses text for row r into *v. source names where text came from ("--threads",
 * "DUCKSTORE_THREADS") and starts every error message.
 */
static ds_status_t parse_value(const ds_cfg_row_t *r, const char *text, const char *source,
                               ds_cfg_value_t *v, ds_err_t *err)
{
    memset(v, 0, sizeof(*v));
    switch (r->kind) {
    case DS_CFG_STR:
        if (text[0] == '\0')
            return DS_OK;
        v->s = strdup(text);
        if (!v->s)
            return ds_err_setf(err, DS_INTERNAL, source, "%s: out of memory", source);
        return DS_OK;
    case DS_CFG_INT:
        if (!parse_int(text, &v->i))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, source, "%s: \"%.200s\" is not a number",
                               source, text);
        return DS_OK;
    case DS_CFG_BYTES:
        if (!ds_parse_bytes(text, &v->i))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, source,
                               "%s: \"%.200s\" is not a size (use e.g. 1024, 4GB, 512MiB or 50%%)",
                               source, text);
        return DS_OK;
    case DS_CFG_DURATION:
        if (!ds_parse_duration(text, &v->i))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, source,
                               "%s: \"%.200s\" is not a duration (use e.g. 30, 30s, 10m, 2h or 15d)",
                               source, text);
        return DS_OK;
    case DS_CFG_RATIO:
        if (!parse_ratio(text, &v->i))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, source, "%s: \"%.200s\" is not a number from 0 to 1",
                               source, text);
        return DS_OK;
    case DS_CFG_LOGLEVEL:
        if (!parse_level(text, &v->level))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, source,
                               "%s: \"%.200s\" is not a log level (use debug, info, warn or error)",
                               source, text);
        return DS_OK;
    }
    return ds_err_setf(err, DS_INTERNAL, source, "%s: unknown setting kind", source);
}

/* Parses text and, only when it is good, stores it in cfg (freeing the old string). */
static ds_status_t set_value(ds_config_t *cfg, const ds_cfg_row_t *r, const char *text,
                             const char *source, ds_err_t *err)
{
    ds_cfg_value_t v;
    ds_status_t st = parse_value(r, text, source, &v, err);
    if (st != DS_OK)
        return st;
    switch (r->kind) {
    case DS_CFG_STR:
        free(*str_field(cfg, r));
        *str_field(cfg, r) = v.s;
        break;
    case DS_CFG_LOGLEVEL:
        *level_field(cfg, r) = v.level;
        break;
    default:
        *int_field(cfg, r) = v.i;
        break;
    }
    return DS_OK;
}

void ds_config_free(ds_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < DS_CFG_COUNT; i++)
        if (settings[i].kind == DS_CFG_STR) {
            free(*str_field(cfg, &settings[i]));
            *str_field(cfg, &settings[i]) = NULL;
        }
}

ds_status_t ds_config_defaults(ds_config_t *cfg, ds_err_t *err)
{
    ds_status_t st;
    char source[96];
    if (!cfg)
        return ds_err_set(err, DS_INTERNAL, "ds_config_defaults: no config");
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < DS_CFG_COUNT; i++) {
        snprintf(source, sizeof(source), "default of %s", settings[i].env);
        st = set_value(cfg, &settings[i], settings[i].def, source, err);
        if (st != DS_OK)
            goto fail;
    }
    return DS_OK;
fail:
    ds_config_free(cfg);
    /* A default that does not parse is a bug in DS_CONFIG_MAP, not the user's mistake. */
    if (err)
        err->status = DS_INTERNAL;
    return DS_INTERNAL;
}

static const char *process_getenv(const char *name) { return getenv(name); }

ds_status_t ds_config_apply_env(ds_config_t *cfg, ds_getenv_cb getenv_cb, ds_err_t *err)
{
    if (!cfg)
        return ds_err_set(err, DS_INTERNAL, "ds_config_apply_env: no config");
    if (!getenv_cb)
        getenv_cb = process_getenv;
    for (size_t i = 0; i < DS_CFG_COUNT; i++) {
        const char *text = getenv_cb(settings[i].env);
        if (!text)
            continue;
        ds_status_t st = set_value(cfg, &settings[i], text, settings[i].env, err);
        if (st != DS_OK)
            return st;
    }
    return DS_OK;
}

static const ds_cfg_row_t *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < DS_CFG_COUNT; i++)
        if (strlen(settings[i].flag) == len && memcmp(settings[i].flag, name, len) == 0)
            return &settings[i];
    return NULL;
}

ds_status_t ds_config_apply_args(ds_config_t *cfg, int argc, char **argv, int first, ds_err_t *err)
{
    char source[80];
    if (!cfg)
        return ds_err_set(err, DS_INTERNAL, "ds_config_apply_args: no config");
    for (int i = first < 0 ? 0 : first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0' || arg[2] == '=')
            return ds_err_set(err, DS_INVALID_ARGUMENT,
                              "unexpected argument \"%.200s\" (settings are --name=value)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const ds_cfg_row_t *r = find_flag(name, len);
        snprintf(source, sizeof(source), "--%.*s", (int)(len > 70 ? 70 : len), name);
        if (!r)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, source, "unknown flag \"%s\" (see --help)",
                               source);
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            /* "--data-dir --threads 4" is a forgotten value, not a directory named "--threads". */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return ds_err_setf(err, DS_INVALID_ARGUMENT, source, "%s needs a value", source);
            value = argv[++i];
        }
        ds_status_t st = set_value(cfg, r, value, source, err);
        if (st != DS_OK)
            return st;
    }
    return DS_OK;
}

static const ds_cfg_row_t *row_named(const char *name)
{
    for (size_t i = 0; i < DS_CFG_COUNT; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

/* Fails with a message naming the setting's env var and flag. */
static ds_status_t invalid(ds_err_t *err, const char *name, const char *what)
{
    const ds_cfg_row_t *r = row_named(name);
    return ds_err_setf(err, DS_INVALID_ARGUMENT, r->env, "%s (--%s): %s", r->env, r->flag, what);
}

static ds_status_t check_min(ds_err_t *err, const char *name, int64_t v, int64_t min)
{
    char what[96];
    if (v >= min)
        return DS_OK;
    snprintf(what, sizeof(what), "must be at least %lld, got %lld", (long long)min, (long long)v);
    return invalid(err, name, what);
}

/* A byte limit other than the memory limit: positive, and not a share of memory. */
static ds_status_t check_size(ds_err_t *err, const char *name, int64_t v)
{
    if (v < 0)
        return invalid(err, name, "a percentage is accepted only for the memory limit");
    return check_min(err, name, v, 1);
}

ds_status_t ds_config_validate(const ds_config_t *cfg, ds_err_t *err)
{
    ds_status_t st;
    if (!cfg)
        return ds_err_set(err, DS_INTERNAL, "ds_config_validate: no config");
    if (!cfg->data_dir || !cfg->data_dir[0])
        return invalid(err, "data_dir", "must not be empty");
    if (!ds_parse_addr(cfg->http_addr, NULL, 0, NULL))
        return invalid(err, "http_addr",
                       "must be host:port with a port 1-65535 (IPv6 as [::1]:8000)");
    if (!cfg->grpc_addr ||
        (strcmp(cfg->grpc_addr, "off") != 0 && !ds_parse_addr(cfg->grpc_addr, NULL, 0, NULL)))
        return invalid(err, "grpc_addr",
                       "must be host:port with a port 1-65535 (IPv6 as [::1]:50051), or \"off\"");
    /* 0 bytes would leave DuckDB unable to run a single query. */
    if (cfg->memory_limit == 0)
        return invalid(err, "memory_limit", "must not be 0");
    if ((unsigned)cfg->log_level > DS_LOG_ERROR)
        return invalid(err, "log_level", "must be debug, info, warn or error");
    if ((st = check_min(err, "threads", cfg->threads, 0)) != DS_OK ||
        (st = check_min(err, "max_open_projects", cfg->max_open_projects, 1)) != DS_OK ||
        (st = check_min(err, "queue_depth", cfg->queue_depth, 1)) != DS_OK ||
        (st = check_size(err, "max_json_bytes", cfg->max_json_bytes)) != DS_OK ||
        (st = check_size(err, "max_upload_bytes", cfg->max_upload_bytes)) != DS_OK ||
        (st = check_min(err, "file_ttl", cfg->file_ttl, 1)) != DS_OK ||
        (st = check_min(err, "idempotency_ttl", cfg->idempotency_ttl, 1)) != DS_OK ||
        (st = check_min(err, "snapshot_retention", cfg->snapshot_retention, 0)) != DS_OK ||
        (st = check_min(err, "history_sweep", cfg->history_sweep, 1)) != DS_OK ||
        (st = check_min(err, "files_sweep", cfg->files_sweep, 1)) != DS_OK ||
        (st = check_min(err, "retention_day", cfg->retention_day, 1)) != DS_OK ||
        (st = check_min(err, "compact_min_free_bytes", cfg->compact_min_free_bytes, 0)) != DS_OK ||
        (st = check_min(err, "compact_wait", cfg->compact_wait, 0)) != DS_OK ||
        (st = check_min(err, "compact_retry", cfg->compact_retry, 1)) != DS_OK ||
        (st = check_size(err, "export_slice_bytes", cfg->export_slice_bytes)) != DS_OK ||
        (st = check_min(err, "max_connections", cfg->max_connections, 1)) != DS_OK ||
        (st = check_size(err, "grpc_max_recv_bytes", cfg->grpc_max_recv_bytes)) != DS_OK ||
        (st = check_size(err, "grpc_max_send_bytes", cfg->grpc_max_send_bytes)) != DS_OK ||
        (st = check_min(err, "max_connections_per_ip", cfg->max_connections_per_ip, 1)) != DS_OK ||
        (st = check_min(err, "http_threads", cfg->http_threads, 1)) != DS_OK ||
        (st = check_min(err, "http_workers", cfg->http_workers, 1)) != DS_OK ||
        (st = check_min(err, "http_project_workers", cfg->http_project_workers, 1)) != DS_OK ||
        (st = check_min(err, "header_timeout", cfg->header_timeout, 1)) != DS_OK ||
        (st = check_min(err, "idle_timeout", cfg->idle_timeout, 1)) != DS_OK ||
        (st = check_min(err, "delete_wait", cfg->delete_wait, 1)) != DS_OK ||
        (st = check_min(err, "grpc_workers", cfg->grpc_workers, 1)) != DS_OK ||
        (st = check_min(err, "grpc_queue", cfg->grpc_queue, 0)) != DS_OK ||
        (st = check_min(err, "grpc_caller_share", cfg->grpc_caller_share, 1)) != DS_OK ||
        (st = check_size(err, "unauth_body_bytes", cfg->unauth_body_bytes)) != DS_OK ||
        (st = check_size(err, "body_memory", cfg->body_memory)) != DS_OK)
        return st;
    if (cfg->body_memory < cfg->max_json_bytes)
        return invalid(err, "body_memory", "must be at least max_json_bytes (one largest body must fit)");
    /* Fixed bounds, so the thread and memory budget of the gRPC side stays documented. */
    if (cfg->ws_memory_limit < ((int64_t)16 << 20))
        return invalid(err, "ws_memory_limit", "must be a size of at least 16MiB (not a percentage)");
    if (cfg->ws_threads < 1 || cfg->ws_threads > 256)
        return invalid(err, "ws_threads", "must be from 1 to 256");
    if (cfg->ws_readers < 0 || cfg->ws_readers > 256)
        return invalid(err, "ws_readers", "must be from 0 to 256");
    if (cfg->ws_max_open < 1 || cfg->ws_max_rows < 1 || cfg->ws_timeout < 1)
        return invalid(err, cfg->ws_max_open < 1 ? "ws_max_open" : cfg->ws_max_rows < 1 ? "ws_max_rows" : "ws_timeout",
                       "must be at least 1");
    if (cfg->grpc_workers > 1024)
        return invalid(err, "grpc_workers", "must be at most 1024");
    if (cfg->grpc_queue > 65536)
        return invalid(err, "grpc_queue", "must be at most 65536");
    if (cfg->grpc_caller_share > 100)
        return invalid(err, "grpc_caller_share", "must be a percentage from 1 to 100");
    /* gRPC takes message limits as an int. */
    if (cfg->grpc_max_recv_bytes > INT32_MAX)
        return invalid(err, "grpc_max_recv_bytes", "must be at most 2147483647 bytes (2GiB - 1)");
    if (cfg->grpc_max_send_bytes > INT32_MAX)
        return invalid(err, "grpc_max_send_bytes", "must be at most 2147483647 bytes (2GiB - 1)");
    return DS_OK;
}

int64_t ds_config_memory_bytes(const ds_config_t *cfg, int64_t phys)
{
    if (!cfg)
        return 0;
    if (cfg->memory_limit >= 0)
        return cfg->memory_limit;
    if (phys <= 0)
        return 0;
    int64_t pct = -cfg->memory_limit;
    /* Split the product so 100% of a very large phys cannot overflow. */
    return phys / 100 * pct + phys % 100 * pct / 100;
}

void ds_config_print_help(void *file)
{
    FILE *out = file ? (FILE *)file : stdout;
    int wflag = 0, wenv = 0, wdef = 0;
    for (size_t i = 0; i < DS_CFG_COUNT; i++) {
        const ds_cfg_row_t *r = &settings[i];
        int n = (int)strlen(r->flag) + 2;
        if (n > wflag)
            wflag = n;
        if ((int)strlen(r->env) > wenv)
            wenv = (int)strlen(r->env);
        n = r->def[0] ? (int)strlen(r->def) : (int)strlen("(unset)");
        if (n > wdef)
            wdef = n;
    }
    for (size_t i = 0; i < DS_CFG_COUNT; i++) {
        const ds_cfg_row_t *r = &settings[i];
        fprintf(out, "  --%-*s  %-*s  %-*s  %s\n", wflag - 2, r->flag, wenv, r->env, wdef,
                r->def[0] ? r->def : "(unset)", r->help);
    }
}
