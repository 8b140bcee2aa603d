/*
 * test_shares.c - the share, link and read-only records of the global catalog
 * (src/catalog/shares.c) on a real catalog in a temporary directory.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/shares.h"

static char dir[] = "/tmp/ds_shares_XXXXXX";
static ds_arena_t *arena;

static void setup(void)
{
    ds_err_t err = {0};
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ds_catalog_open(dir, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_shares_init(&err), DS_OK, "%s", err.message);
    arena = ds_arena_create();
}

static void teardown(void)
{
    ds_arena_destroy(&arena);
    ds_catalog_close();
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(shares, .init = setup, .fini = teardown);

Test(shares, share_recipients_round_trip_and_replace)
{
    ds_err_t err = {0};
    const char *to[] = {"p2", "p3"};
    ds_share_rec_t rec = {.project = "p1", .bucket = "in.c-Main", .targets = to, .n_targets = 2, .created_at = 7};
    cr_assert_eq(ds_catalog_share_put(&rec, &err), DS_OK, "%s", err.message);
    ds_share_rec_t got;
    bool found = false;
    /* Bucket ids match regardless of letter case, as the engine matches them. */
    cr_assert_eq(ds_catalog_share_get(arena, "p1", "in.c-main", &got, &found, &err), DS_OK);
    cr_assert(found);
    cr_assert_str_eq(got.bucket, "in.c-Main");
    cr_assert_eq(got.n_targets, 2);
    cr_assert(ds_catalog_share_includes(&got, "p3"));
    cr_assert_not(ds_catalog_share_includes(&got, "p4"));
    cr_assert_not(ds_catalog_share_includes(&got, "p"));
    /* Sharing again replaces the recipients: one record per bucket. */
    ds_share_rec_t org = {.project = "p1", .bucket = "IN.C-MAIN", .organization = true};
    cr_assert_eq(ds_catalog_share_put(&org, &err), DS_OK);
    ds_share_rec_t *items;
    size_t n;
    cr_assert_eq(ds_catalog_share_list(arena, "p1", &items, &n, &err), DS_OK);
    cr_assert_eq(n, 1);
    cr_assert(items[0].organization);
    cr_assert(ds_catalog_share_includes(&items[0], "anyone"));
    bool removed = false;
    cr_assert_eq(ds_catalog_share_delete("p1", "in.c-main", &removed, &err), DS_OK);
    cr_assert(removed);
    cr_assert_eq(ds_catalog_share_get(arena, "p1", "in.c-main", &got, &found, &err), DS_OK);
    cr_assert_not(found);
}

Test(shares, links_are_unique_per_target_and_listed_by_source)
{
    ds_err_t err = {0};
    ds_link_rec_t a = {.project = "p2", .bucket = "in.c-l", .source_project = "p1", .source_bucket = "in.c-x"};
    ds_link_rec_t b = {.project = "p3", .bucket = "out.c-y", .source_project = "p1", .source_bucket = "in.c-x"};
    cr_assert_eq(ds_catalog_link_insert(&a, &err), DS_OK, "%s", err.message);
    cr_assert_eq(ds_catalog_link_insert(&b, &err), DS_OK, "%s", err.message);
    ds_link_rec_t dup = a;
    dup.bucket = "IN.C-L";
    cr_assert_eq(ds_catalog_link_insert(&dup, &err), DS_ALREADY_EXISTS);
    cr_assert(strstr(err.message, "in.c-l") != NULL, "%s", err.message);
    ds_link_rec_t *items;
    size_t n;
    cr_assert_eq(ds_catalog_link_list_source(arena, "p1", "IN.c-X", &items, &n, &err), DS_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(items[0].project, "p2");
    cr_assert_str_eq(items[1].project, "p3");
    /* Forgetting the source project removes every link to it. */
    cr_assert_eq(ds_catalog_shares_forget("p1", &err), DS_OK);
    cr_assert_eq(ds_catalog_link_list(arena, "p2", &items, &n, &err), DS_OK);
    cr_assert_eq(n, 0);
}

Test(shares, readonly_revocation_is_per_project_and_bucket)
{
    ds_err_t err = {0};
    bool revoked = true;
    cr_assert_eq(ds_catalog_readonly_revoked("p1", "in.c-x", &revoked, &err), DS_OK);
    cr_assert_not(revoked);
    cr_assert_eq(ds_catalog_readonly_set("p1", "in.c-x", true, &err), DS_OK);
    cr_assert_eq(ds_catalog_readonly_set("p1", "in.c-x", true, &err), DS_OK);
    cr_assert_eq(ds_catalog_readonly_revoked("p1", "IN.C-X", &revoked, &err), DS_OK);
    cr_assert(revoked);
    cr_assert_eq(ds_catalog_readonly_revoked("p2", "in.c-x", &revoked, &err), DS_OK);
    cr_assert_not(revoked);
    cr_assert_eq(ds_catalog_readonly_set("p1", "in.c-x", false, &err), DS_OK);
    cr_assert_eq(ds_catalog_readonly_revoked("p1", "in.c-x", &revoked, &err), DS_OK);
    cr_assert_not(revoked);
}
