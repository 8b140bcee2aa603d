/*
 * test_service.c - the one write check (ds_cmd_require_write): which caller
 * scope may write which branch. The end-to-end tests drive it through every
 * route; here each scope meets main, the default branch's name and other
 * branches, including the case a branch key may write (its own branch), which
 * no route can reach before development branches exist.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cmd/cmd.h"

static ds_status_t check(int scope, const char *scope_branch, const char *branch)
{
    ds_ctx_t ctx = {.scope = scope, .scope_branch = scope_branch, .key_id = "k-1", .branch = branch};
    return ds_cmd_require_write(&ctx);
}

Test(service, admin_and_project_keys_write_every_branch)
{
    const char *branches[] = {NULL, "", "default", "main", "dev_1"};
    for (size_t i = 0; i < sizeof(branches) / sizeof(branches[0]); i++) {
        cr_assert_eq(check(DS_CALLER_ADMIN, NULL, branches[i]), DS_OK);
        cr_assert_eq(check(DS_CALLER_PROJECT, NULL, branches[i]), DS_OK);
    }
}

Test(service, read_key_writes_nothing)
{
    const char *branches[] = {NULL, "default", "dev_1"};
    for (size_t i = 0; i < sizeof(branches) / sizeof(branches[0]); i++) {
        ds_ctx_t ctx = {.scope = DS_CALLER_READ, .key_id = "k-r", .branch = branches[i]};
        cr_assert_eq(ds_cmd_require_write(&ctx), DS_PERMISSION_DENIED);
        cr_assert(strstr(ctx.err.message, "read-only"), "%s", ctx.err.message);
        cr_assert(strstr(ctx.err.message, "k-r"), "%s", ctx.err.message);
    }
}

Test(service, branch_key_writes_only_its_branch)
{
    cr_assert_eq(check(DS_CALLER_BRANCH, "dev_1", "dev_1"), DS_OK);
    cr_assert_eq(check(DS_CALLER_BRANCH, "dev_1", "dev_2"), DS_PERMISSION_DENIED);
    cr_assert_eq(check(DS_CALLER_BRANCH, "dev_1", "dev_10"), DS_PERMISSION_DENIED);
    cr_assert_eq(check(DS_CALLER_BRANCH, "dev_1", "DEV_1"), DS_PERMISSION_DENIED);
    const char *mains[] = {NULL, "", "default", "main"};
    for (size_t i = 0; i < sizeof(mains) / sizeof(mains[0]); i++) {
        ds_ctx_t ctx = {.scope = DS_CALLER_BRANCH, .scope_branch = "dev_1", .key_id = "k-b", .branch = mains[i]};
        cr_assert_eq(ds_cmd_require_write(&ctx), DS_PERMISSION_DENIED);
        cr_assert(strstr(ctx.err.message, "main branch") && strstr(ctx.err.message, "dev_1"), "%s",
                  ctx.err.message);
    }
    /* A branch key whose branch could not be read never writes. */
    cr_assert_eq(check(DS_CALLER_BRANCH, NULL, "dev_1"), DS_PERMISSION_DENIED);
}

Test(service, unauthenticated_caller_writes_nothing)
{
    cr_assert_eq(check(DS_CALLER_NONE, NULL, NULL), DS_UNAUTHENTICATED);
    cr_assert_eq(check(DS_CALLER_NONE, "dev_1", "dev_1"), DS_UNAUTHENTICATED);
}
