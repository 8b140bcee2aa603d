/*
 * test_config.c - settings: defaults, env vars, flags, precedence, validation,
 * size/duration/address parsing and the --help table.
 *
 * The environment is faked through the getenv callback, so no test touches the
 * process environment.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

/* The fake environment of the current test: name/value pairs ending with NULL. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    for (int i = 0; fake_env && fake_env[i]; i += 2)
        if (strcmp(fake_env[i], name) == 0)
            return fake_env[i + 1];
    return NULL;
}

static ds_config_t cfg;
static ds_err_t err;

static void setup_defaults(void)
{
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_config_defaults(&cfg, &err), DS_OK, "%s", err.message);
}

static void teardown_cfg(void) { ds_config_free(&cfg); }

/* Applies env, then args, like main does, and returns the first failure. */
static ds_status_t load(const char *const *env, int argc, char **argv)
{
    fake_env = env;
    ds_status_t st = ds_config_apply_env(&cfg, fake_getenv, &err);
    if (st != DS_OK)
        return st;
    st = ds_config_apply_args(&cfg, argc, argv, 1, &err);
    if (st != DS_OK)
        return st;
    return ds_config_validate(&cfg, &err);
}

TestSuite(config, .init = setup_defaults, .fini = teardown_cfg);

Test(config, defaults_match_the_documented_values)
{
    cr_assert_str_eq(cfg.data_dir, "./var");
    cr_assert_str_eq(cfg.http_addr, "127.0.0.1:8000");
    cr_assert_str_eq(cfg.grpc_addr, "127.0.0.1:50051");
    cr_assert_null(cfg.admin_key, "an empty default means unset");
    cr_assert_null(cfg.plugin_dir);
    cr_assert_eq(cfg.memory_limit, -50);
    cr_assert_eq(cfg.threads, 0);
    cr_assert_eq(cfg.max_open_projects, 256);
    cr_assert_eq(cfg.log_level, DS_LOG_INFO);
    cr_assert_eq(cfg.queue_depth, 256);
    cr_assert_eq(cfg.max_json_bytes, 16LL << 20);
    cr_assert_eq(cfg.max_upload_bytes, 100LL << 30);
    cr_assert_eq(cfg.file_ttl, 15LL * 86400);
    cr_assert_eq(cfg.export_slice_bytes, 1LL << 30);
    cr_assert_eq(cfg.max_connections, 16384);
    cr_assert_eq(cfg.max_connections_per_ip, 2048);
    cr_assert_eq(cfg.http_threads, 2);
    cr_assert_eq(cfg.http_workers, 16);
    cr_assert_eq(cfg.http_project_workers, 8);
    cr_assert_eq(cfg.header_timeout, 10);
    cr_assert_eq(cfg.idle_timeout, 60);
    cr_assert_eq(cfg.delete_wait, 60);
    cr_assert_eq(cfg.grpc_max_recv_bytes, 16LL << 20);
    cr_assert_eq(cfg.grpc_max_send_bytes, 64LL << 20);
    cr_assert_eq(cfg.grpc_workers, 16);
    cr_assert_eq(cfg.grpc_queue, 64);
    cr_assert_eq(cfg.grpc_caller_share, 50);
    cr_assert_eq(cfg.unauth_body_bytes, 64LL << 10);
    cr_assert_eq(cfg.history_sweep, 300);
    cr_assert_eq(cfg.files_sweep, 60);
    cr_assert_eq(cfg.retention_day, 86400);
    cr_assert_eq(cfg.compact_min_free_bytes, 64LL << 20);
    cr_assert_eq(cfg.compact_min_free_ratio, 250000);
    cr_assert_eq(cfg.compact_wait, 30);
    cr_assert_eq(cfg.compact_retry, 60);
    cr_assert_eq(ds_config_validate(&cfg, &err), DS_OK, "defaults must validate: %s", err.message);
}

Test(config, env_vars_override_defaults)
{
    static const char *const env[] = {"DUCKSTORE_DATA_DIR", "/srv/duck",
                                      "DUCKSTORE_THREADS", "8",
                                      "DUCKSTORE_MEMORY_LIMIT", "4GB",
                                      "DUCKSTORE_LOG_LEVEL", "debug",
                                      "DUCKSTORE_FILE_TTL", "2h",
                                      "DUCKSTORE_GRPC_ADDR", "off",
                                      "DUCKSTORE_ADMIN_KEY", "secret",
                                      "DUCKSTORE_COMPACT_MIN_FREE_RATIO", "0.4",
                                      NULL};
    char *argv[] = {"duckstore"};
    cr_assert_eq(load(env, 1, argv), DS_OK, "%s", err.message);
    cr_assert_str_eq(cfg.data_dir, "/srv/duck");
    cr_assert_eq(cfg.threads, 8);
    cr_assert_eq(cfg.memory_limit, 4000000000LL);
    cr_assert_eq(cfg.log_level, DS_LOG_DEBUG);
    cr_assert_eq(cfg.file_ttl, 7200);
    cr_assert_str_eq(cfg.grpc_addr, "off");
    cr_assert_str_eq(cfg.admin_key, "secret");
    cr_assert_eq(cfg.compact_min_free_ratio, 400000);
    /* Settings without an env var keep their defaults. */
    cr_assert_eq(cfg.queue_depth, 256);
    cr_assert_str_eq(cfg.http_addr, "127.0.0.1:8000");
}

Test(config, flags_in_both_forms_override_defaults)
{
    char *argv[] = {"duckstore", "--data-dir=/tmp/a", "--threads", "3", "--max-json-bytes=1MiB",
                    "--http-addr", "[::1]:9000", "--log-level=WARN"};
    cr_assert_eq(load(NULL, 8, argv), DS_OK, "%s", err.message);
    cr_assert_str_eq(cfg.data_dir, "/tmp/a");
    cr_assert_eq(cfg.threads, 3);
    cr_assert_eq(cfg.max_json_bytes, 1048576);
    cr_assert_str_eq(cfg.http_addr, "[::1]:9000");
    cr_assert_eq(cfg.log_level, DS_LOG_WARN);
}

Test(config, flag_beats_env)
{
    static const char *const env[] = {"DUCKSTORE_THREADS", "8", "DUCKSTORE_DATA_DIR", "/env", NULL};
    char *argv[] = {"duckstore", "--threads=2", "--data-dir", "/flag"};
    cr_assert_eq(load(env, 4, argv), DS_OK, "%s", err.message);
    cr_assert_eq(cfg.threads, 2);
    cr_assert_str_eq(cfg.data_dir, "/flag");
}

Test(config, args_before_first_are_ignored)
{
    char *argv[] = {"duckstore", "serve", "--threads=5"};
    cr_assert_eq(ds_config_apply_args(&cfg, 3, argv, 2, &err), DS_OK, "%s", err.message);
    cr_assert_eq(cfg.threads, 5);
}

Test(config, unknown_flag_is_named)
{
    char *argv[] = {"duckstore", "--threads=2", "--no-such-thing=1"};
    cr_assert_eq(ds_config_apply_args(&cfg, 3, argv, 1, &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "--no-such-thing"), "message: %s", err.message);
    cr_assert_null(strstr(err.message, "=1"), "only the flag name is quoted: %s", err.message);
}

Test(config, a_flag_prefix_is_not_a_flag)
{
    char *argv[] = {"duckstore", "--data=/x"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, argv, 1, &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "--data\""), "message: %s", err.message);
    cr_assert_str_eq(cfg.data_dir, "./var");
}

Test(config, flag_without_value_is_an_error)
{
    char *last[] = {"duckstore", "--threads"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, last, 1, &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "--threads"), "message: %s", err.message);

    char *followed[] = {"duckstore", "--data-dir", "--threads=4"};
    cr_assert_eq(ds_config_apply_args(&cfg, 3, followed, 1, &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "--data-dir"), "message: %s", err.message);
    cr_assert_str_eq(cfg.data_dir, "./var");
}

Test(config, positional_argument_is_an_error)
{
    char *argv[] = {"duckstore", "stray"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, argv, 1, &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "stray"), "message: %s", err.message);
}

Test(config, bad_env_value_names_the_env_var)
{
    static const char *const env[] = {"DUCKSTORE_THREADS", "abc", NULL};
    fake_env = env;
    cr_assert_eq(ds_config_apply_env(&cfg, fake_getenv, &err), DS_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "DUCKSTORE_THREADS: \"abc\" is not a number");
    cr_assert_eq(cfg.threads, 0, "a rejected value leaves the setting alone");
}

Test(config, bad_flag_value_names_the_flag)
{
    char *argv[] = {"duckstore", "--memory-limit=lots"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, argv, 1, &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "--memory-limit"), "message: %s", err.message);
    cr_assert_not_null(strstr(err.message, "\"lots\""), "message: %s", err.message);
    cr_assert_eq(cfg.memory_limit, -50);
}

Test(config, bad_values_of_every_kind_are_rejected)
{
    static const char *const cases[][2] = {
        {"DUCKSTORE_THREADS", "1.5"},         {"DUCKSTORE_THREADS", ""},
        {"DUCKSTORE_THREADS", "99999999999999999999"},
        {"DUCKSTORE_QUEUE_DEPTH", "12 "},     {"DUCKSTORE_MAX_JSON_BYTES", "5XB"},
        {"DUCKSTORE_MEMORY_LIMIT", "150%"},   {"DUCKSTORE_FILE_TTL", "3w"},
        {"DUCKSTORE_FILE_TTL", "-5"},         {"DUCKSTORE_LOG_LEVEL", "verbose"},
        {"DUCKSTORE_HISTORY_SWEEP_SECONDS", "soon"}, {"DUCKSTORE_RETENTION_DAY_SECONDS", "1y"},
        {"DUCKSTORE_COMPACT_MIN_FREE_BYTES", "big"}, {"DUCKSTORE_COMPACT_MIN_FREE_RATIO", "lots"},
        {"DUCKSTORE_COMPACT_MIN_FREE_RATIO", "1.5"},  {"DUCKSTORE_COMPACT_MIN_FREE_RATIO", "-0.1"},
        {"DUCKSTORE_COMPACT_MIN_FREE_RATIO", " 0.5"}, {"DUCKSTORE_COMPACT_MIN_FREE_RATIO", "nan"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i][0], cases[i][1], NULL};
        fake_env = env;
        memset(&err, 0, sizeof(err));
        cr_assert_eq(ds_config_apply_env(&cfg, fake_getenv, &err), DS_INVALID_ARGUMENT,
                     "%s=\"%s\" accepted", cases[i][0], cases[i][1]);
        cr_assert_not_null(strstr(err.message, cases[i][0]), "message: %s", err.message);
    }
}

Test(config, validation_names_the_setting)
{
    static const struct {
        const char *flag;
        const char *env;
    } cases[] = {
        {"--threads=-1", "DUCKSTORE_THREADS"},
        {"--max-open-projects=0", "DUCKSTORE_MAX_OPEN_PROJECTS"},
        {"--queue-depth=0", "DUCKSTORE_QUEUE_DEPTH"},
        {"--max-json-bytes=0", "DUCKSTORE_MAX_JSON_BYTES"},
        {"--max-upload-bytes=0", "DUCKSTORE_MAX_UPLOAD_BYTES"},
        {"--file-ttl=0", "DUCKSTORE_FILE_TTL"},
        {"--export-slice-bytes=0", "DUCKSTORE_EXPORT_SLICE_BYTES"},
        {"--max-connections=0", "DUCKSTORE_MAX_CONNECTIONS"},
        {"--data-dir=", "DUCKSTORE_DATA_DIR"},
        {"--http-addr=localhost", "DUCKSTORE_HTTP_ADDR"},
        {"--http-addr=127.0.0.1:0", "DUCKSTORE_HTTP_ADDR"},
        {"--http-addr=127.0.0.1:65536", "DUCKSTORE_HTTP_ADDR"},
        {"--grpc-addr=disabled", "DUCKSTORE_GRPC_ADDR"},
        {"--memory-limit=0", "DUCKSTORE_MEMORY_LIMIT"},
        {"--max-json-bytes=10%", "DUCKSTORE_MAX_JSON_BYTES"},
        {"--grpc-max-recv-bytes=0", "DUCKSTORE_GRPC_MAX_RECV_BYTES"},
        {"--grpc-max-send-bytes=0", "DUCKSTORE_GRPC_MAX_SEND_BYTES"},
        {"--grpc-max-recv-bytes=2GiB", "DUCKSTORE_GRPC_MAX_RECV_BYTES"},
        {"--grpc-max-send-bytes=3GB", "DUCKSTORE_GRPC_MAX_SEND_BYTES"},
        {"--history-sweep=0", "DUCKSTORE_HISTORY_SWEEP_SECONDS"},
        {"--files-sweep=0", "DUCKSTORE_FILES_SWEEP_SECONDS"},
        {"--retention-day=0", "DUCKSTORE_RETENTION_DAY_SECONDS"},
        {"--compact-min-free-bytes=10%", "DUCKSTORE_COMPACT_MIN_FREE_BYTES"},
        {"--compact-retry=0", "DUCKSTORE_COMPACT_RETRY_SECONDS"},
        {"--unauth-body-bytes=0", "DUCKSTORE_UNAUTH_BODY_BYTES"},
        {"--body-memory=0", "DUCKSTORE_BODY_MEMORY"},
        {"--body-memory=10%", "DUCKSTORE_BODY_MEMORY"},
        {"--body-memory=1MiB", "DUCKSTORE_BODY_MEMORY"}, /* less than max_json_bytes (16MiB) */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ds_config_free(&cfg);
        cr_assert_eq(ds_config_defaults(&cfg, &err), DS_OK);
        char *argv[] = {"duckstore", (char *)cases[i].flag};
        cr_assert_eq(ds_config_apply_args(&cfg, 2, argv, 1, &err), DS_OK, "%s: %s", cases[i].flag,
                     err.message);
        memset(&err, 0, sizeof(err));
        cr_assert_eq(ds_config_validate(&cfg, &err), DS_INVALID_ARGUMENT, "%s passed validation",
                     cases[i].flag);
        cr_assert_not_null(strstr(err.message, cases[i].env), "%s: message: %s", cases[i].flag,
                           err.message);
    }
}

Test(config, percent_memory_resolves_against_physical_memory)
{
    int64_t phys = 16LL << 30;
    cr_assert_eq(ds_config_memory_bytes(&cfg, phys), 8LL << 30, "default is half of memory");

    char *quarter[] = {"duckstore", "--memory-limit=25%"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, quarter, 1, &err), DS_OK);
    cr_assert_eq(cfg.memory_limit, -25);
    cr_assert_eq(ds_config_memory_bytes(&cfg, phys), 4LL << 30);

    char *all[] = {"duckstore", "--memory-limit=100%"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, all, 1, &err), DS_OK);
    cr_assert_eq(ds_config_memory_bytes(&cfg, INT64_MAX), INT64_MAX, "no overflow at 100%%");

    char *fixed[] = {"duckstore", "--memory-limit=512MiB"};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, fixed, 1, &err), DS_OK);
    cr_assert_eq(ds_config_memory_bytes(&cfg, phys), 512LL << 20, "absolute sizes ignore phys");
}

Test(config, parse_bytes_units)
{
    static const struct {
        const char *in;
        int64_t want;
    } ok[] = {
        {"0", 0},
        {"1024", 1024},
        {"1024B", 1024},
        {"4KB", 4000},
        {"4kb", 4000},
        {"3MB", 3000000},
        {"4GB", 4000000000LL},
        {"2TB", 2000000000000LL},
        {"4KiB", 4096},
        {"512MiB", 512LL << 20},
        {"512mib", 512LL << 20},
        {"2GiB", 2LL << 30},
        {"1TiB", 1LL << 40},
        {"4 GB", 4000000000LL},
        {"50%", -50},
        {"1%", -1},
        {"100%", -100},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = 12345;
        cr_assert(ds_parse_bytes(ok[i].in, &v), "\"%s\" rejected", ok[i].in);
        cr_assert_eq(v, ok[i].want, "\"%s\" gave %lld", ok[i].in, (long long)v);
    }
    static const char *const bad[] = {"",     "GB",    "-1",  "4XB",  "4 G",  "1.5GB",
                                      "0%",   "101%",  "50 %", "%",   "4GBs", "9999999TiB",
                                      "99999999999999999999", NULL};
    for (int i = 0; bad[i]; i++) {
        int64_t v;
        cr_assert_not(ds_parse_bytes(bad[i], &v), "\"%s\" accepted", bad[i]);
    }
    cr_assert_not(ds_parse_bytes(NULL, &(int64_t){0}));
}

Test(config, parse_duration_units)
{
    static const struct {
        const char *in;
        int64_t want;
    } ok[] = {{"30", 30}, {"30s", 30}, {"10m", 600}, {"2h", 7200}, {"15d", 1296000}, {"2H", 7200}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        cr_assert(ds_parse_duration(ok[i].in, &v), "\"%s\" rejected", ok[i].in);
        cr_assert_eq(v, ok[i].want, "\"%s\" gave %lld", ok[i].in, (long long)v);
    }
    static const char *const bad[] = {"", "s", "-1", "10ms", "1w", "1.5h", " 5", "5 ", NULL};
    for (int i = 0; bad[i]; i++) {
        int64_t v;
        cr_assert_not(ds_parse_duration(bad[i], &v), "\"%s\" accepted", bad[i]);
    }
}

Test(config, parse_addr_ipv4_name_and_ipv6)
{
    char host[64];
    int port = 0;
    cr_assert(ds_parse_addr("127.0.0.1:8000", host, sizeof(host), &port));
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 8000);
    cr_assert(ds_parse_addr("localhost:1", host, sizeof(host), &port));
    cr_assert_str_eq(host, "localhost");
    cr_assert_eq(port, 1);
    cr_assert(ds_parse_addr("[::1]:65535", host, sizeof(host), &port));
    cr_assert_str_eq(host, "::1", "brackets are stripped from IPv6 hosts");
    cr_assert_eq(port, 65535);
    cr_assert(ds_parse_addr("[::]:50051", host, sizeof(host), &port));
    cr_assert_str_eq(host, "::");
}

Test(config, parse_addr_rejects_malformed)
{
    static const char *const bad[] = {"",           "8000",           ":8000",       "host:",
                                      "host:0",     "host:65536",     "host:80x",    "host:-1",
                                      "::1:8000",   "[::1]8000",      "[::1]",       "[]:80",
                                      "[::1:80",    "ho st:80",       "host:+80",    NULL};
    char host[64];
    int port;
    for (int i = 0; bad[i]; i++)
        cr_assert_not(ds_parse_addr(bad[i], host, sizeof(host), &port), "\"%s\" accepted", bad[i]);
    cr_assert_not(ds_parse_addr("example.com:80", host, 5, &port), "host buffer too small");
}

Test(config, log_level_names)
{
    cr_assert_str_eq(ds_log_level_name(DS_LOG_DEBUG), "debug");
    cr_assert_str_eq(ds_log_level_name(DS_LOG_INFO), "info");
    cr_assert_str_eq(ds_log_level_name(DS_LOG_WARN), "warn");
    cr_assert_str_eq(ds_log_level_name(DS_LOG_ERROR), "error");
    cr_assert_not_null(ds_log_level_name((ds_log_level_t)42));
}

Test(config, empty_string_value_unsets_a_string_setting)
{
    static const char *const env[] = {"DUCKSTORE_PLUGIN_DIR", "/plugins", NULL};
    fake_env = env;
    cr_assert_eq(ds_config_apply_env(&cfg, fake_getenv, &err), DS_OK);
    cr_assert_str_eq(cfg.plugin_dir, "/plugins");
    char *argv[] = {"duckstore", "--plugin-dir="};
    cr_assert_eq(ds_config_apply_args(&cfg, 2, argv, 1, &err), DS_OK);
    cr_assert_null(cfg.plugin_dir);
}

Test(config, free_twice_is_safe)
{
    ds_config_free(&cfg);
    cr_assert_null(cfg.data_dir);
    ds_config_free(&cfg);
    ds_config_free(NULL);
}

#define COUNT_SETTING(field, env, flag, kind, def, help) +1
static const int n_settings = 0 DS_CONFIG_MAP(COUNT_SETTING);
#undef COUNT_SETTING

Test(config, help_lists_every_setting_on_its_own_line)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    ds_config_print_help(f);
    fclose(f);

    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, n_settings, "%d lines for %d settings:\n%s", lines, n_settings, text);

    /* Each setting's line carries its flag, env var, default and help. */
#define CHECK_LINE(field, env, flag, kind, def, help)                                              \
    do {                                                                                           \
        char *line = strstr(text, "--" flag " ");                                                  \
        cr_assert_not_null(line, "no line for --%s:\n%s", flag, text);                            \
        char *eol = strchr(line, '\n');                                                            \
        *eol = '\0';                                                                               \
        cr_assert_not_null(strstr(line, env), "line: %s", line);                                  \
        cr_assert_not_null(strstr(line, help), "line: %s", line);                                 \
        if ((def)[0])                                                                              \
            cr_assert_not_null(strstr(line, def), "line: %s", line);                              \
        *eol = '\n';                                                                               \
    } while (0);
    DS_CONFIG_MAP(CHECK_LINE)
#undef CHECK_LINE
    free(text);
}

Test(config, grpc_pool_settings_are_bounded_and_named)
{
    static const char *const env[] = {"DUCKSTORE_GRPC_WORKERS", "4", "DUCKSTORE_GRPC_QUEUE", "0",
                                      "DUCKSTORE_GRPC_CALLER_SHARE", "25", "DUCKSTORE_UNAUTH_BODY_BYTES", "8KiB",
                                      NULL};
    char *argv[] = {"duckstore"};
    cr_assert_eq(load(env, 1, argv), DS_OK, "%s", err.message);
    cr_assert_eq(cfg.grpc_workers, 4);
    cr_assert_eq(cfg.grpc_queue, 0, "no queue: calls run at once or are refused");
    cr_assert_eq(cfg.grpc_caller_share, 25);
    cr_assert_eq(cfg.unauth_body_bytes, 8192);
    static const struct {
        const char *flag;
        const char *names;
    } bad[] = {
        {"--grpc-workers=0", "DUCKSTORE_GRPC_WORKERS"},
        {"--grpc-workers=1025", "DUCKSTORE_GRPC_WORKERS"},
        {"--grpc-queue=-1", "DUCKSTORE_GRPC_QUEUE"},
        {"--grpc-queue=65537", "DUCKSTORE_GRPC_QUEUE"},
        {"--grpc-caller-share=0", "DUCKSTORE_GRPC_CALLER_SHARE"},
        {"--grpc-caller-share=101", "DUCKSTORE_GRPC_CALLER_SHARE"},
        {"--unauth-body-bytes=0", "DUCKSTORE_UNAUTH_BODY_BYTES"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ds_config_free(&cfg);
        cr_assert_eq(ds_config_defaults(&cfg, &err), DS_OK);
        char *args[] = {"duckstore", (char *)bad[i].flag};
        cr_assert_eq(load(NULL, 2, args), DS_INVALID_ARGUMENT, "%s was accepted", bad[i].flag);
        cr_assert_not_null(strstr(err.message, bad[i].names), "%s: %s", bad[i].flag, err.message);
    }
}

Test(config, body_memory_must_hold_the_largest_json_body)
{
    const char *env[] = {"DUCKSTORE_MAX_JSON_BYTES", "4MiB", "DUCKSTORE_BODY_MEMORY", "4MiB", NULL};
    cr_assert_eq(load(env, 0, NULL), DS_OK, "equal sizes fit one body: %s", err.message);
    cr_assert_eq(cfg.body_memory, 4LL << 20);

    const char *less[] = {"DUCKSTORE_MAX_JSON_BYTES", "4MiB", "DUCKSTORE_BODY_MEMORY", "4194303", NULL};
    memset(&err, 0, sizeof(err));
    cr_assert_eq(load(less, 0, NULL), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "max_json_bytes"), "message: %s", err.message);
}
