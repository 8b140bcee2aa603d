/*
 * test_slots.c - write slots and project pins are let go exactly once on
 * every path of the command layer (src/cmd/service.c, project.c), also when
 * the arena hook that would release them cannot be registered (it then runs
 * at once, so the caller must not release again): a slot or pin left held
 * makes every later writer of the table, or the project's delete, wait for
 * ever; one released twice hands another request's turn or pin away.
 * ds_service_holds counts what is held.
 */
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "unit-slots-admin-key-0123456789abcdef"

static char dir[] = "/tmp/ds_slots_XXXXXX";
static ds_config_t cfg;

static ds_ctx_t admin_ctx(void)
{
    return (ds_ctx_t){.arena = ds_arena_create(), .key = KEY, .scope = DS_CALLER_ADMIN};
}

static void setup(void)
{
    ds_err_t err = {0};
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ds_config_defaults(&cfg, &err), DS_OK, "%s", err.message);
    free(cfg.data_dir);
    cfg.data_dir = strdup(dir);
    free(cfg.admin_key);
    cfg.admin_key = strdup(KEY);
    free(cfg.grpc_addr);
    cfg.grpc_addr = strdup("off");
    ds_log_set_level(DS_LOG_ERROR);
    ds_metrics_init();
    cr_assert_eq(ds_service_start(&cfg, &err), DS_OK, "%s", err.message);
    ds_ctx_t ctx = admin_ctx();
    ds_project_t p;
    cr_assert_eq(ds_cmd_project_create(&ctx, &(ds_project_create_t){.id = "p"}, &p), DS_OK, "%s", ctx.err.message);
    ds_arena_destroy(&ctx.arena);
}

static void teardown(void)
{
    ds_alloc_fail_after(-1);
    ds_service_stop();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static ds_holds_t holds(void)
{
    ds_holds_t h = {0};
    ds_service_holds(&h);
    return h;
}

TestSuite(slots, .init = setup, .fini = teardown);

Test(slots, a_slot_whose_release_hook_cannot_be_registered_is_left_at_once)
{
    /* Every allocation of an entry fails in turn, the hook's among them: a failed entry holds nothing. */
    int failed = 0;
    for (long n = 0; n < 16; n++) {
        ds_ctx_t ctx = admin_ctx();
        ds_alloc_fail_after(n);
        ds_status_t st = ds_cmd_enter_table(&ctx, "p", "in.c-a", "t");
        ds_alloc_fail_after(-1);
        if (st != DS_OK) {
            failed++;
            cr_assert_eq(st, DS_UNAVAILABLE, "%s", ctx.err.message);
            cr_assert_eq(holds().slots, 0, "allocation %ld failed (%s); the slot stayed held", n, ctx.err.message);
        } else {
            cr_assert_eq(holds().slots, 1);
        }
        ds_arena_destroy(&ctx.arena);
        cr_assert_eq(holds().slots, 0);
    }
    cr_assert_gt(failed, 0, "no allocation of an entry failed: the test tested nothing");
    /* The next writer of the table gets the slot at once (it waited for ever before). */
    ds_ctx_t next = admin_ctx();
    cr_assert_eq(ds_cmd_enter_table(&next, "p", "in.c-a", "t"), DS_OK, "%s", next.err.message);
    ds_arena_destroy(&next.arena);
    ds_holds_t h = holds();
    cr_assert(h.slots == 0 && h.waiting == 0 && h.pins == 0 && h.calls == 0);
}

Test(slots, a_pin_whose_release_hook_cannot_be_registered_is_dropped_once)
{
    /* Another request holds the project meanwhile, so a pin dropped twice shows as a count too low. */
    ds_ctx_t other = admin_ctx();
    cr_assert_eq(ds_cmd_project_pin(&other, "p"), DS_OK, "%s", other.err.message);
    int failed = 0;
    for (long n = 0; n < 8; n++) {
        ds_ctx_t ctx = admin_ctx();
        ds_alloc_fail_after(n);
        ds_status_t st = ds_cmd_project_pin(&ctx, "p");
        ds_alloc_fail_after(-1);
        if (st != DS_OK) {
            failed++;
            cr_assert_eq(holds().pins, 1, "allocation %ld failed (%s): the other request's pin must stay", n,
                         ctx.err.message);
        }
        ds_arena_destroy(&ctx.arena);
        cr_assert_eq(holds().pins, 1);
    }
    cr_assert_gt(failed, 0, "no allocation of a pin failed: the test tested nothing");
    ds_arena_destroy(&other.arena);
    cr_assert_eq(holds().pins, 0);
    /* The project's delete does not wait for a request that is gone. */
    ds_ctx_t del = admin_ctx();
    cr_assert_eq(ds_cmd_project_delete(&del, "p"), DS_OK, "%s", del.err.message);
    ds_arena_destroy(&del.arena);
}
