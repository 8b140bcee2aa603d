/*
 * test_quarantine.c - core/quarantine.c: moves keep the bytes and say why,
 * folders that got nothing vanish, list shows, purge honours the age.
 */
#include "core/quarantine.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data[256];

static void setup(void)
{
    snprintf(data, sizeof(data), "/tmp/ds_quarantine_XXXXXX");
    cr_assert_not_null(mkdtemp(data));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static int count_folders(void)
{
    char root[300];
    snprintf(root, sizeof(root), "%s/quarantine", data);
    DIR *d = opendir(root);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(data, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(quarantine, .init = setup, .fini = teardown);

Test(quarantine, path_moves_the_bytes_and_writes_why)
{
    char src[300], dir[4096], moved[4200], why[4200];
    ds_err_t err = {0};
    snprintf(src, sizeof(src), "%s/orphan.duckdb", data);
    write_file(src, "payload");
    cr_assert_eq(ds_quarantine_path(data, "orphan-project", "project x", src, &err), DS_OK, "%s", err.message);
    cr_assert_neq(access(src, F_OK), 0, "the source is still there");
    cr_assert_eq(count_folders(), 1);

    char root[300];
    snprintf(root, sizeof(root), "%s/quarantine", data);
    DIR *d = opendir(root);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && e->d_name[0] == '.')
        ;
    cr_assert_not_null(e);
    cr_assert_not_null(strstr(e->d_name, "Z-orphan-project"), "folder name %s", e->d_name);
    snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
    closedir(d);
    snprintf(moved, sizeof(moved), "%s/orphan.duckdb", dir);
    snprintf(why, sizeof(why), "%s/why.json", dir);
    char buf[64] = {0};
    FILE *f = fopen(moved, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    cr_assert_str_eq(buf, "payload");
    f = fopen(why, "r");
    cr_assert_not_null(f);
    char text[1024] = {0};
    cr_assert_gt(fread(text, 1, sizeof(text) - 1, f), 0);
    fclose(f);
    cr_assert_not_null(strstr(text, "\"reason\": \"orphan-project\""), "%s", text);
    cr_assert_not_null(strstr(text, "\"what\": \"project x\""), "%s", text);
}

Test(quarantine, missing_path_changes_nothing)
{
    char src[300];
    ds_err_t err = {0};
    snprintf(src, sizeof(src), "%s/nothing-here", data);
    cr_assert_eq(ds_quarantine_path(data, "orphan-project", "x", src, &err), DS_NOT_FOUND);
    cr_assert_eq(count_folders(), 0, "a folder was left for nothing");
}

Test(quarantine, nested_names_and_empty_close)
{
    char dir[4096], src[300], moved[4300];
    ds_err_t err = {0};
    cr_assert_eq(ds_quarantine_open(data, "unindexed-files", "files", "objects", dir, sizeof(dir), &err), DS_OK);
    snprintf(src, sizeof(src), "%s/stray", data);
    write_file(src, "x");
    cr_assert_eq(ds_quarantine_move_into(dir, src, "objects/a/b/stray", &err), DS_OK, "%s", err.message);
    snprintf(moved, sizeof(moved), "%s/objects/a/b/stray", dir);
    cr_assert_eq(access(moved, F_OK), 0);
    cr_assert_eq(ds_quarantine_move_into(dir, src, "../escape", &err), DS_NOT_FOUND);
    write_file(src, "y");
    cr_assert_eq(ds_quarantine_move_into(dir, src, "../escape", &err), DS_INVALID_ARGUMENT);
    ds_quarantine_close(dir, true, "unindexed-files", "files");

    char dir2[4096];
    cr_assert_eq(ds_quarantine_open(data, "half-created", "nothing", "", dir2, sizeof(dir2), &err), DS_OK);
    cr_assert_str_neq(dir, dir2, "two folders in one second must differ");
    ds_quarantine_close(dir2, false, "half-created", "nothing");
    cr_assert_neq(access(dir2, F_OK), 0, "an empty folder stayed");
    cr_assert_eq(count_folders(), 1);
}

Test(quarantine, list_and_purge_by_age)
{
    char src[300], old[400];
    ds_err_t err = {0};
    int removed = -1;
    snprintf(src, sizeof(src), "%s/f", data);
    write_file(src, "12345");
    cr_assert_eq(ds_quarantine_path(data, "orphan-project", "recent", src, &err), DS_OK);
    /* A folder from 2020, as a restored older quarantine would have. */
    snprintf(old, sizeof(old), "%s/quarantine/20200101T000000Z-orphan-project", data);
    cr_assert_eq(mkdir(old, 0750), 0);

    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    cr_assert_eq(ds_quarantine_list(data, mem, &err), 2);
    fclose(mem);
    cr_assert_not_null(strstr(out, "20200101T000000Z-orphan-project"), "%s", out);
    cr_assert_not_null(strstr(out, "5 bytes\trecent"), "%s", out);
    free(out);

    mem = open_memstream(&out, &len);
    cr_assert_eq(ds_quarantine_purge(data, 86400, mem, &removed, &err), DS_OK);
    fclose(mem);
    free(out);
    cr_assert_eq(removed, 1, "only the 2020 folder is older than a day");
    cr_assert_neq(access(old, F_OK), 0);
    cr_assert_eq(count_folders(), 1);

    mem = open_memstream(&out, &len);
    cr_assert_eq(ds_quarantine_purge(data, 0, mem, &removed, &err), DS_OK);
    fclose(mem);
    free(out);
    cr_assert_eq(removed, 1);
    cr_assert_eq(count_folders(), 0);
}
