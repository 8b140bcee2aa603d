/*
 * test_registry.c - the backend registry with in-process entry functions:
 * registration checks (ABI version, struct size, name, settings present and
 * typed, failing open), duplicates, pins, unloading rules (built in, pinned,
 * refused by the caller's check), ops of an older, smaller struct, the
 * plugin path confinement without a plugin directory, and the backend
 * settings file (precedence over the environment, re-reading, bad lines).
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/registry.h"
#include "core/cancel.h"

static int opens, closes;

static ds_status_t t_open(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    (void)h;
    (void)err;
    opens++;
    *self = &opens;
    return DS_OK;
}

static void t_close(void *self)
{
    (void)self;
    closes++;
}

static ds_status_t t_open_fails(const ds_host_api_t *h, void **self, ds_err_t *err)
{
    *self = NULL;
    return h->err_set(err, DS_UNAVAILABLE, "no server");
}

static const ds_be_setting_t typed_settings[] = {
    {.key = "NEEDED", .type = DS_SETTING_STRING, .required = true},
    {.key = "COUNT", .type = DS_SETTING_INT, .default_value = "2"},
    {.key = "FLAG", .type = DS_SETTING_BOOL, .default_value = "no"},
};

static ds_backend_ops_t ops;

static const ds_backend_ops_t *entry(const ds_host_api_t *h)
{
    (void)h;
    return &ops;
}

static const ds_backend_ops_t *null_entry(const ds_host_api_t *h)
{
    (void)h;
    return NULL;
}

static void base_ops(const char *name)
{
    memset(&ops, 0, sizeof(ops));
    ops.abi_version = DS_BACKEND_ABI_VERSION;
    ops.struct_size = sizeof(ops);
    ops.name = name;
    ops.version = "1";
    ops.open = t_open;
    ops.close = t_close;
}

static void setup(void)
{
    ds_err_t err = {0};
    opens = closes = 0;
    cr_assert_eq(ds_registry_init("/tmp", 1 << 20, 1, 4, &err), DS_OK);
    unsetenv("DUCKSTORE_BE_TYPED_NEEDED");
    unsetenv("DUCKSTORE_BE_TYPED_COUNT");
    unsetenv("DUCKSTORE_BE_TYPED_FLAG");
}

static void teardown(void) { ds_registry_shutdown(); }

TestSuite(registry, .init = setup, .fini = teardown);

Test(registry, add_get_put_and_duplicate)
{
    ds_err_t err = {0};
    ds_backend_t *b = NULL;
    base_ops("alpha");
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK, "%s", err.message);
    cr_assert_eq(opens, 1);
    cr_assert_eq(ds_registry_get("alpha", &b, &err), DS_OK);
    cr_assert_str_eq(b->ops->name, "alpha");
    ds_registry_put(b);
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_ALREADY_EXISTS);
    cr_assert(strstr(err.message, "alpha"));
    cr_assert_eq(opens, 1, "a duplicate must not be opened");
    cr_assert_eq(ds_registry_get("beta", &b, &err), DS_NOT_FOUND);
    cr_assert_null(b);
}

Test(registry, rejects_bad_ops_before_open)
{
    ds_err_t err = {0};
    cr_assert_eq(ds_registry_add(null_entry, NULL, &err), DS_INVALID_ARGUMENT);
    base_ops("abi");
    ops.abi_version = DS_BACKEND_ABI_VERSION + 1;
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "ABI version"), "%s", err.message);
    base_ops("small");
    ops.struct_size = 16;
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    base_ops("Bad-Name");
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    base_ops("noclose");
    ops.close = NULL;
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(opens, 0);
}

Test(registry, settings_are_checked)
{
    ds_err_t err = {0};
    base_ops("typed");
    ops.settings = typed_settings;
    ops.n_settings = 3;
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "DUCKSTORE_BE_TYPED_NEEDED"), "%s", err.message);
    setenv("DUCKSTORE_BE_TYPED_NEEDED", "x", 1);
    setenv("DUCKSTORE_BE_TYPED_COUNT", "2x", 1);
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "integer"), "%s", err.message);
    setenv("DUCKSTORE_BE_TYPED_COUNT", "7", 1);
    setenv("DUCKSTORE_BE_TYPED_FLAG", "perhaps", 1);
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    setenv("DUCKSTORE_BE_TYPED_FLAG", "on", 1);
    cr_assert_eq(opens, 0);
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK, "%s", err.message);
    const ds_host_api_t *h = ds_registry_host();
    cr_assert_str_eq(h->setting("typed", "COUNT"), "7");
    unsetenv("DUCKSTORE_BE_TYPED_COUNT");
    cr_assert_str_eq(h->setting("typed", "COUNT"), "2", "the declared default");
    cr_assert_null(h->setting("typed", "UNKNOWN"));
}

Test(registry, failing_open_registers_nothing)
{
    ds_err_t err = {0};
    ds_backend_t *b;
    base_ops("broken");
    ops.open = t_open_fails;
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_UNAVAILABLE);
    cr_assert(strstr(err.message, "no server"), "%s", err.message);
    cr_assert_eq(ds_registry_get("broken", &b, &err), DS_NOT_FOUND);
}

Test(registry, older_smaller_ops_read_as_null)
{
    ds_err_t err = {0};
    ds_backend_t *b;
    base_ops("old");
    ops.struct_size = (uint32_t)DS_BE_OPS_V1_SIZE;
    ops.description = "must not be read";
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_registry_get("old", &b, &err), DS_OK);
    cr_assert(DS_BE_HAS(b->ops, description));
    cr_assert_null(b->ops->description, "fields past the plugin's struct_size are zero");
    cr_assert_null(b->ops->caps);
    ds_registry_put(b);
}

static ds_status_t refuse(const char *name, void *ud, ds_err_t *err)
{
    (*(int *)ud)++;
    return ds_err_set(err, DS_CONFLICT, "%s is in use", name);
}

static ds_status_t allow(const char *name, void *ud, ds_err_t *err)
{
    (void)name;
    (void)err;
    (*(int *)ud)++;
    return DS_OK;
}

Test(registry, unload_rules)
{
    ds_err_t err = {0};
    ds_backend_t *b;
    int checks = 0;
    base_ops("builtin");
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK);
    cr_assert_eq(ds_registry_unload("builtin", allow, &checks, 10, &err), DS_CONFLICT);
    cr_assert(strstr(err.message, "built in"));
    /* The registry copies the ops, so the one static struct serves every registration here. */
    base_ops("plug");
    void *self_handle = dlopen(NULL, RTLD_NOW);
    cr_assert_eq(ds_registry_add(entry, self_handle, &err), DS_OK);
    /* Pinned: the unload waits, then gives up and leaves it usable. */
    cr_assert_eq(ds_registry_get("plug", &b, &err), DS_OK);
    cr_assert_eq(ds_registry_unload("plug", allow, &checks, 50, &err), DS_CONFLICT);
    cr_assert(strstr(err.message, "in use"), "%s", err.message);
    cr_assert_eq(checks, 0, "the check runs only once no request pins it");
    ds_registry_put(b);
    /* Refused by the caller's check: stays. */
    cr_assert_eq(ds_registry_unload("plug", refuse, &checks, 50, &err), DS_CONFLICT);
    cr_assert_eq(checks, 1);
    cr_assert_eq(ds_registry_get("plug", &b, &err), DS_OK);
    ds_registry_put(b);
    cr_assert_eq(closes, 0);
    cr_assert_eq(ds_registry_unload("plug", allow, &checks, 50, &err), DS_OK, "%s", err.message);
    cr_assert_eq(closes, 1);
    cr_assert_eq(ds_registry_get("plug", &b, &err), DS_NOT_FOUND);
    cr_assert_eq(ds_registry_unload("plug", allow, &checks, 50, &err), DS_NOT_FOUND);
}

static int seen;
static void count_cb(ds_backend_t *b, void *ud)
{
    (void)ud;
    ds_backend_t *again;
    ds_err_t err = {0};
    /* The registry is not locked during the callback. */
    cr_assert_eq(ds_registry_get(b->ops->name, &again, &err), DS_OK);
    ds_registry_put(again);
    seen++;
}

Test(registry, each_calls_back_unlocked)
{
    ds_err_t err = {0};
    base_ops("one");
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK);
    base_ops("two");
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK);
    seen = 0;
    ds_registry_each(count_cb, NULL);
    cr_assert_eq(seen, 2);
}

Test(registry, no_plugin_directory)
{
    ds_err_t err = {0};
    cr_assert_eq(ds_registry_load_file("x.so", NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "DUCKSTORE_PLUGIN_DIR"), "%s", err.message);
}

static void note_interrupt(void *ud) { (*(int *)ud)++; }

Test(registry, host_api_cancellation_reaches_the_call)
{
    const ds_host_api_t *h = ds_registry_host();
    cr_assert(DS_HOST_HAS(h, cancel_hook) && DS_HOST_HAS(h, cancel_unhook) && DS_HOST_HAS(h, cancelled));
    ds_err_t err = {0};
    /* A call without a cancellation (REST, internal calls) can always start and is never cancelled. */
    ds_be_call_t plain = {.err = &err};
    int n = 0;
    cr_assert(h->cancel_hook(&plain, note_interrupt, &n));
    cr_assert_not(h->cancelled(&plain));
    h->cancel_unhook(&plain, &n);
    /* A call with one: the host's cancel runs the backend's interrupt, and later hooks are refused. */
    ds_cancel_t *c = ds_cancel_create();
    ds_be_call_t call = {.err = &err, .cancel = c};
    cr_assert(h->cancel_hook(&call, note_interrupt, &n));
    ds_cancel_fire(c, "deadline exceeded");
    cr_assert_eq(n, 1);
    cr_assert(h->cancelled(&call));
    h->cancel_unhook(&call, &n);
    cr_assert_not(h->cancel_hook(&call, note_interrupt, &n));
    ds_cancel_free(&c);
}

/* Writes text to a fresh temporary file; returns its path (static storage). */
static const char *settings_file_with(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/ds_settings_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(registry, settings_file_wins_over_the_environment_and_is_read_again)
{
    ds_err_t err = {0};
    base_ops("typed");
    ops.settings = typed_settings;
    ops.n_settings = 3;
    setenv("DUCKSTORE_BE_TYPED_COUNT", "7", 1);
    const char *path = settings_file_with("# comment\n\n  DUCKSTORE_BE_TYPED_COUNT = 9\r\n"
                                          "DUCKSTORE_BE_TYPED_FLAG=\"yes\"\nDUCKSTORE_BE_TYPED_FLAG='no'\n");
    cr_assert_eq(ds_registry_settings_file(path, &err), DS_OK, "%s", err.message);
    const ds_host_api_t *h = ds_registry_host();
    cr_assert_str_eq(h->setting("typed", "COUNT"), "9", "the file wins over the environment");
    cr_assert_str_eq(h->setting("typed", "FLAG"), "no", "a later line wins, quotes are removed");
    cr_assert(!ds_registry_setting_configured("typed", "NEEDED"));
    /* NEEDED is missing: the registration fails and says so. */
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "DUCKSTORE_BE_TYPED_NEEDED"), "%s", err.message);
    /* The operator fixes the file; the next read sees it, the old value stays valid for holders. */
    const char *held = h->setting("typed", "COUNT");
    FILE *f = fopen(path, "w");
    fputs("DUCKSTORE_BE_TYPED_NEEDED=here\nDUCKSTORE_BE_TYPED_COUNT=11\n", f);
    fclose(f);
    cr_assert_eq(ds_registry_settings_file(path, &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(held, "9");
    cr_assert_str_eq(h->setting("typed", "COUNT"), "11");
    cr_assert(ds_registry_setting_configured("typed", "NEEDED"));
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK, "%s", err.message);
    unlink(path);
}

Test(registry, bad_settings_file_names_the_line_and_changes_nothing)
{
    ds_err_t err = {0};
    const char *good = settings_file_with("DUCKSTORE_BE_TYPED_COUNT=3\n");
    cr_assert_eq(ds_registry_settings_file(good, &err), DS_OK, "%s", err.message);
    const char *bad[] = {"DUCKSTORE_BE_TYPED_COUNT=4\nno equals sign here\n", "OTHER_VAR=1\n",
                         "DUCKSTORE_BE_=1\n", "DUCKSTORE_BE_typed_count=1\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path = settings_file_with(bad[i]);
        memset(&err, 0, sizeof(err));
        cr_expect_eq(ds_registry_settings_file(path, &err), DS_INVALID_ARGUMENT, "%s accepted", bad[i]);
        cr_expect(strstr(err.message, path) && strstr(err.message, "line"), "%s", err.message);
        cr_expect_str_eq(ds_registry_host()->setting("typed", "COUNT"), "3", "a bad file changed the settings");
        unlink(path);
    }
    memset(&err, 0, sizeof(err));
    cr_expect_eq(ds_registry_settings_file("/nonexistent/settings", &err), DS_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "/nonexistent/settings"), "%s", err.message);
    unlink(good);
}

Test(registry, reload_of_unknown_name_is_not_found)
{
    ds_err_t err = {0};
    cr_assert_eq(ds_registry_reload("nothing", NULL, &err), DS_NOT_FOUND);
    cr_assert(strstr(err.message, "nothing"));
    base_ops("here");
    cr_assert_eq(ds_registry_add(entry, NULL, &err), DS_OK);
    const char *name = NULL;
    cr_assert_eq(ds_registry_reload("here", &name, &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(name, "here");
}
