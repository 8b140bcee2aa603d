/*
 * test_files_path.c - Storage Files path confinement (ds_files_confine) and,
 * on top of it, the import/export helpers that other commands call:
 * ds_files_resolve (single files, manifests, folders, escapes),
 * ds_files_scratch_dir and ds_files_adopt.
 *
 * The "confine" suite builds small directory trees with symlinks in a
 * temporary directory. The "resolve" suite starts the service core in-process
 * (catalog, DuckDB backend, files; no HTTP) on a temporary data directory and
 * drives the commands directly, the way the import and export code does.
 * Criterion runs every test in its own process, so nothing is shared.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/files.h"
#include "core/config.h"
#include "core/log.h"

static char tmp[PATH_MAX];  /* the test's temporary directory (resolved) */
static char root[PATH_MAX + 8]; /* <tmp>/area: the confinement root */
static ds_err_t err;

static void mk(const char *rel)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    cr_assert_eq(mkdir(p, 0750), 0, "mkdir %s: %s", p, strerror(errno));
}

static void put(const char *rel, const char *content)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    FILE *f = fopen(p, "w");
    cr_assert(f, "create %s: %s", p, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static void link_to(const char *target, const char *rel)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    cr_assert_eq(symlink(target, p), 0, "symlink %s: %s", p, strerror(errno));
}

static const char *at(const char *rel)
{
    static char p[4][PATH_MAX * 2];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", tmp, rel);
    return p[k];
}

static void remove_all(const char *path)
{
    char cmd[PATH_MAX * 2 + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

static void make_tmp(void)
{
    char tmpl[] = "/tmp/ds_files_test_XXXXXX";
    cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
    cr_assert(realpath(tmpl, tmp));
    memset(&err, 0, sizeof(err));
}

/*
 * <tmp>/area/               the root
 *   objects/a.csv           a file
 *   objects/dir/b.csv       a file in a folder
 *   objects/file            a file where a test wants a folder
 *   in_link -> objects/a.csv          (relative, stays inside)
 *   dir_link -> objects/dir           (stays inside)
 *   out_file -> <tmp>/outside/secret  (leaves)
 *   out_dir -> ../outside             (leaves, relative)
 *   twin -> <tmp>/area2/x             (a sibling whose name starts like the root's)
 *   dangling -> nowhere
 *   loop1 -> loop2, loop2 -> loop1
 * <tmp>/outside/secret, <tmp>/area2/x
 */
static void setup_tree(void)
{
    make_tmp();
    snprintf(root, sizeof(root), "%s/area", tmp);
    mk("area");
    mk("area/objects");
    mk("area/objects/dir");
    mk("outside");
    mk("area2");
    put("area/objects/a.csv", "a");
    put("area/objects/dir/b.csv", "b");
    put("area/objects/file", "f");
    put("outside/secret", "s");
    put("area2/x", "x");
    link_to("objects/a.csv", "area/in_link");
    link_to("objects/dir", "area/dir_link");
    link_to(at("outside/secret"), "area/out_file");
    link_to("../outside", "area/out_dir");
    link_to(at("area2/x"), "area/twin");
    link_to("nowhere", "area/dangling");
    link_to("loop2", "area/loop1");
    link_to("loop1", "area/loop2");
}

static void teardown_tree(void) { remove_all(tmp); }

static ds_status_t confine(const char *rel, bool may_be_missing, char *out)
{
    memset(&err, 0, sizeof(err));
    return ds_files_confine(root, rel, may_be_missing, out, PATH_MAX, &err);
}

TestSuite(confine, .init = setup_tree, .fini = teardown_tree);

Test(confine, existing_paths_resolve_inside)
{
    char out[PATH_MAX];
    cr_assert_eq(confine("objects/a.csv", false, out), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/a.csv"));
    cr_assert_eq(confine("objects/dir/b.csv", false, out), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/dir/b.csv"));
    cr_assert_eq(confine("objects/dir", false, out), DS_OK);
    cr_assert_str_eq(out, at("area/objects/dir"));
    cr_assert_eq(confine("", false, out), DS_OK);
    cr_assert_str_eq(out, root);
}

Test(confine, missing_paths)
{
    char out[PATH_MAX];
    cr_assert_eq(confine("objects/new.csv", false, out), DS_NOT_FOUND);
    cr_assert_eq(confine("objects/new/deeper/x.csv", true, out), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/new/deeper/x.csv"));
    cr_assert_eq(confine("objects/dir/new.csv", true, out), DS_OK);
    cr_assert_str_eq(out, at("area/objects/dir/new.csv"));
}

Test(confine, lexical_escapes_are_rejected)
{
    static const char *const bad[] = {"../outside/secret", "objects/../../outside/secret", "objects/..",
                                      "..", "/etc/passwd", "objects//a.csv", "./objects/a.csv",
                                      "objects/./a.csv", "objects/", "/", NULL};
    char out[PATH_MAX];
    for (int i = 0; bad[i]; i++) {
        cr_assert_eq(confine(bad[i], false, out), DS_INVALID_ARGUMENT, "\"%s\" accepted", bad[i]);
        cr_assert_eq(confine(bad[i], true, out), DS_INVALID_ARGUMENT, "\"%s\" accepted (may be missing)", bad[i]);
    }
    cr_assert_eq(ds_files_confine(root, NULL, true, out, sizeof(out), &err), DS_INVALID_ARGUMENT);
}

Test(confine, symlinks_that_stay_inside_are_followed)
{
    char out[PATH_MAX];
    cr_assert_eq(confine("in_link", false, out), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/a.csv"));
    cr_assert_eq(confine("dir_link/b.csv", false, out), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/dir/b.csv"));
    cr_assert_eq(confine("dir_link/new/c.csv", true, out), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/dir/new/c.csv"));
}

Test(confine, symlinks_that_leave_are_rejected)
{
    static const char *const bad[] = {"out_file", "out_dir/secret", "out_dir", "out_dir/new.csv", "twin", NULL};
    char out[PATH_MAX];
    for (int i = 0; bad[i]; i++) {
        cr_assert_eq(confine(bad[i], false, out), DS_INVALID_ARGUMENT, "\"%s\" accepted", bad[i]);
        cr_assert_eq(confine(bad[i], true, out), DS_INVALID_ARGUMENT, "\"%s\" accepted (may be missing)", bad[i]);
        cr_assert(strstr(err.message, "symlink"), "message does not say why: %s", err.message);
    }
}

Test(confine, dangling_and_looping_symlinks_are_rejected)
{
    char out[PATH_MAX];
    cr_assert_eq(confine("dangling", true, out), DS_INVALID_ARGUMENT);
    cr_assert_eq(confine("dangling/x", true, out), DS_INVALID_ARGUMENT);
    cr_assert_eq(confine("loop1", false, out), DS_INVALID_ARGUMENT);
    cr_assert_eq(confine("loop1/x", true, out), DS_INVALID_ARGUMENT);
}

Test(confine, a_file_where_a_folder_is_needed)
{
    char out[PATH_MAX];
    cr_assert_eq(confine("objects/file/x.csv", true, out), DS_CONFLICT, "%s", err.message);
    cr_assert_eq(confine("objects/file/x.csv", false, out), DS_NOT_FOUND);
    cr_assert_eq(confine("objects/a.csv/x", true, out), DS_CONFLICT);
}

Test(confine, root_through_a_symlink_and_missing_root)
{
    char out[PATH_MAX], alias[PATH_MAX + 16];
    link_to(root, "alias");
    snprintf(alias, sizeof(alias), "%s/alias", tmp);
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_files_confine(alias, "objects/a.csv", false, out, sizeof(out), &err), DS_OK, "%s", err.message);
    cr_assert_str_eq(out, at("area/objects/a.csv"));
    cr_assert_eq(ds_files_confine(alias, "in_link", false, out, sizeof(out), &err), DS_OK);
    cr_assert_eq(ds_files_confine(at("no-such-area"), "x", true, out, sizeof(out), &err), DS_NOT_FOUND);
    cr_assert_eq(ds_files_confine(at("area/objects/a.csv"), "x", true, out, sizeof(out), &err), DS_NOT_FOUND);
}

Test(confine, limits)
{
    char out[PATH_MAX], small[8], seg[NAME_MAX + 2];
    memset(seg, 'y', NAME_MAX + 1);
    seg[NAME_MAX + 1] = '\0';
    cr_assert_eq(confine(seg, true, out), DS_INVALID_ARGUMENT);
    seg[NAME_MAX] = '\0';
    cr_assert_eq(confine(seg, true, out), DS_OK, "%s", err.message);
    cr_assert_eq(ds_files_confine(root, "objects/a.csv", false, small, sizeof(small), &err), DS_INVALID_ARGUMENT);
}

/* ---- resolve, scratch, adopt: the service core in-process ---- */

#define ADMIN "unit-admin-key"

static ds_config_t cfg;
static ds_ctx_t ctx;

static void setup_service(void)
{
    make_tmp();
    ds_log_set_level(DS_LOG_ERROR);
    cr_assert_eq(ds_config_defaults(&cfg, &err), DS_OK);
    free(cfg.data_dir);
    free(cfg.admin_key);
    cfg.data_dir = strdup(at("data"));
    cfg.admin_key = strdup(ADMIN);
    cfg.max_open_projects = 8;
    cr_assert_eq(ds_service_start(&cfg, &err), DS_OK, "%s", err.message);
    ctx = (ds_ctx_t){.arena = ds_arena_create(), .key = ADMIN};
    static const char *const ids[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        ds_project_t p;
        ds_project_create_t in = {.id = ids[i]};
        cr_assert_eq(ds_cmd_project_create(&ctx, &in, &p), DS_OK, "%s", ctx.err.message);
    }
}

static void teardown_service(void)
{
    ds_arena_destroy(&ctx.arena);
    ds_service_stop();
    ds_config_free(&cfg);
    remove_all(tmp);
}

static ds_file_t upload(const char *project, const char *key, const char *content, bool sliced)
{
    ds_upload_t *up = NULL;
    ds_file_t f;
    ds_file_upload_in_t in = {.name = key, .sliced = sliced};
    memset(&ctx.err, 0, sizeof(ctx.err));
    cr_assert_eq(ds_cmd_file_upload_begin(&ctx, project, &in, &up), DS_OK, "%s: %s", key, ctx.err.message);
    cr_assert_eq(ds_cmd_file_upload_write(&ctx, up, content, strlen(content)), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(ds_cmd_file_upload_finish(&ctx, up, &f), DS_OK, "%s: %s", key, ctx.err.message);
    ds_cmd_file_upload_abort(&up);
    return f;
}

static ds_status_t resolve(const char *project, const char *id, const char *key, const char ***paths, size_t *n)
{
    memset(&ctx.err, 0, sizeof(ctx.err));
    return ds_files_resolve(&ctx, project, id, key, paths, n);
}

static const char *object(const char *project, const char *key)
{
    return at(ds_arena_printf(ctx.arena, "data/files/project_%s/objects/%s", project, key));
}

/*
 * A resolved path is a server-named link to the object (never the object's own
 * path, whose key may hold characters a reader would expand): the same file,
 * under a name free of glob characters.
 */
static void assert_reads(const char *path, const char *object_path)
{
    struct stat a, b;
    cr_assert_eq(stat(path, &a), 0, "resolved path %s does not exist", path);
    cr_assert_eq(stat(object_path, &b), 0, "object %s does not exist", object_path);
    cr_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "%s is not %s", path, object_path);
    cr_assert_null(strpbrk(strrchr(path, '/'), "*?[]{}"), "link name %s has glob characters", path);
}

TestSuite(resolve, .init = setup_service, .fini = teardown_service);

Test(resolve, single_file_by_id_and_by_key)
{
    const char **paths;
    size_t n;
    ds_file_t f = upload("a", "in/x.csv", "1,2\n", false);
    cr_assert_eq(resolve("a", f.id, NULL, &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 1);
    assert_reads(paths[0], object("a", "in/x.csv"));
    cr_assert_eq(resolve("a", NULL, "in/x.csv", &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 1);
    assert_reads(paths[0], object("a", "in/x.csv"));
}

Test(resolve, arguments_and_missing_files)
{
    const char **paths;
    size_t n;
    ds_file_t f = upload("a", "x.csv", "x", false);
    cr_assert_eq(resolve("a", NULL, NULL, &paths, &n), DS_INVALID_ARGUMENT);
    cr_assert_eq(resolve("a", f.id, "x.csv", &paths, &n), DS_INVALID_ARGUMENT);
    cr_assert_eq(resolve("a", NULL, "../project_b/objects/x.csv", &paths, &n), DS_INVALID_ARGUMENT);
    cr_assert_eq(resolve("a", NULL, "/etc/passwd", &paths, &n), DS_INVALID_ARGUMENT);
    cr_assert_eq(resolve("a", NULL, "nope.csv", &paths, &n), DS_NOT_FOUND);
    cr_assert_eq(ds_err_keboola(&ctx.err), DS_KBC_FILE_NOT_FOUND);
    cr_assert_eq(resolve("a", "0123456789abcdef0123456789abcdef", NULL, &paths, &n), DS_NOT_FOUND);
    cr_assert_eq(resolve("a", "not-an-id", NULL, &paths, &n), DS_NOT_FOUND);
    /* Another project's file is not found by id or key in this one. */
    cr_assert_eq(resolve("b", f.id, NULL, &paths, &n), DS_NOT_FOUND);
    cr_assert_eq(resolve("b", NULL, "x.csv", &paths, &n), DS_NOT_FOUND);
    cr_assert_eq(resolve("../a", NULL, "x.csv", &paths, &n), DS_INVALID_ARGUMENT);
}

Test(resolve, manifest_expands_to_its_entries_in_order)
{
    const char **paths;
    size_t n;
    upload("a", "s/p1", "1\n", false);
    upload("a", "s/p0", "0\n", false);
    upload("a", "s/p2", "2\n", false);
    ds_file_t m = upload("a", "s/manifest",
                         "{\"entries\":[{\"url\":\"s/p1\"},{\"url\":\"s3://any-bucket/s/p0\"},"
                         "{\"url\":\"s/p2\",\"mandatory\":true}]}",
                         true);
    cr_assert(m.sliced);
    cr_assert_eq(resolve("a", m.id, NULL, &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 3);
    assert_reads(paths[0], object("a", "s/p1"));
    assert_reads(paths[1], object("a", "s/p0"));
    assert_reads(paths[2], object("a", "s/p2"));
    cr_assert_eq(resolve("a", NULL, "s/manifest", &paths, &n), DS_OK);
    cr_assert_eq(n, 3);
    /* An empty manifest is an empty list, not an error. */
    ds_file_t e = upload("a", "empty.manifest", "{\"entries\":[]}", true);
    cr_assert_eq(resolve("a", e.id, NULL, &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 0);
}

Test(resolve, manifest_entries_must_be_files_of_the_same_project)
{
    const char **paths;
    size_t n;
    upload("b", "theirs.csv", "secret", false);
    upload("a", "mine.csv", "mine", false);
    /* b's key does not exist in a: not found, and nothing of b's is read. */
    ds_file_t m1 = upload("a", "m1", "{\"entries\":[{\"url\":\"mine.csv\"},{\"url\":\"theirs.csv\"}]}", true);
    cr_assert_eq(resolve("a", m1.id, NULL, &paths, &n), DS_NOT_FOUND);
    cr_assert(strstr(ctx.err.message, "theirs.csv"), "%s", ctx.err.message);
    /* Entries that try to reach b's area, or any path, are refused outright. Uploading such a
     * manifest is already refused, so they are planted over a valid one on disk. */
    static const char *const escapes[] = {
        "{\"entries\":[{\"url\":\"../../project_b/objects/theirs.csv\"}]}",
        "{\"entries\":[{\"url\":\"s3://bucket/../project_b/objects/theirs.csv\"}]}",
        "{\"entries\":[{\"url\":\"/etc/passwd\"}]}",
        "{\"entries\":[{\"url\":\"file:///etc/passwd\"}]}",
        "{\"entries\":[{\"url\":\"a//b\"}]}",
        "{\"entries\":[{\"url\":\"s3://bucket-only\"}]}",
        "{\"entries\":[{\"nourl\":1}]}",
        "{\"entries\":{}}",
        "not json",
        NULL};
    ds_file_t m2 = upload("a", "m2", "{\"entries\":[{\"url\":\"mine.csv\"}]}", true);
    for (int i = 0; escapes[i]; i++) {
        FILE *f = fopen(object("a", "m2"), "w");
        cr_assert(f);
        fputs(escapes[i], f);
        fclose(f);
        cr_assert_eq(resolve("a", m2.id, NULL, &paths, &n), DS_INVALID_ARGUMENT, "accepted: %s", escapes[i]);
    }
    /* The same manifests are refused at upload. */
    for (int i = 0; escapes[i]; i++) {
        ds_upload_t *up = NULL;
        ds_file_t out;
        ds_file_upload_in_t in = {.name = "m3", .sliced = true};
        cr_assert_eq(ds_cmd_file_upload_begin(&ctx, "a", &in, &up), DS_OK);
        cr_assert_eq(ds_cmd_file_upload_write(&ctx, up, escapes[i], strlen(escapes[i])), DS_OK);
        cr_assert_eq(ds_cmd_file_upload_finish(&ctx, up, &out), DS_INVALID_ARGUMENT, "uploaded: %s", escapes[i]);
        ds_cmd_file_upload_abort(&up);
    }
}

Test(resolve, symlink_escapes_are_rejected)
{
    const char **paths;
    size_t n;
    ds_file_t f = upload("a", "x.csv", "x", false);
    ds_file_t g = upload("a", "sub/y.csv", "y", false);
    upload("b", "theirs.csv", "secret", false);
    /* Replace a's objects behind the service's back with symlinks leaving its area. */
    cr_assert_eq(unlink(object("a", "x.csv")), 0);
    cr_assert_eq(symlink(object("b", "theirs.csv"), object("a", "x.csv")), 0);
    cr_assert_eq(resolve("a", f.id, NULL, &paths, &n), DS_INVALID_ARGUMENT, "%s", ctx.err.message);
    cr_assert_eq(resolve("a", NULL, "x.csv", &paths, &n), DS_INVALID_ARGUMENT);
    remove_all(at("data/files/project_a/objects/sub"));
    cr_assert_eq(symlink(at("data/files/project_b/objects"), object("a", "sub")), 0);
    cr_assert_eq(resolve("a", g.id, NULL, &paths, &n), DS_INVALID_ARGUMENT);
    /* A manifest entry naming such a file is refused too. */
    ds_file_t m = upload("a", "m", "{\"entries\":[{\"url\":\"x.csv\"}]}", true);
    cr_assert_eq(resolve("a", m.id, NULL, &paths, &n), DS_INVALID_ARGUMENT);
    /* Downloading it is refused as well, and deleting it does not touch b's file. */
    int fd = -1;
    ds_file_t info;
    cr_assert_neq(ds_cmd_file_open(&ctx, "a", f.id, &fd, &info), DS_OK);
    cr_assert_eq(fd, -1);
    cr_assert_eq(ds_cmd_file_delete(&ctx, "a", f.id), DS_OK, "%s", ctx.err.message);
    struct stat sb;
    cr_assert_eq(stat(object("b", "theirs.csv"), &sb), 0, "deleting a's file removed b's");
    /* A symlink that stays inside the area is fine. */
    ds_file_t h = upload("a", "real.csv", "r", false);
    ds_file_t l = upload("a", "link.csv", "l", false);
    cr_assert_eq(unlink(object("a", "link.csv")), 0);
    cr_assert_eq(symlink("real.csv", object("a", "link.csv")), 0);
    cr_assert_eq(resolve("a", l.id, NULL, &paths, &n), DS_OK, "%s", ctx.err.message);
    assert_reads(paths[0], object("a", "real.csv"));
    (void)h;
}

Test(resolve, folder_is_every_file_under_the_prefix_sorted)
{
    const char **paths;
    size_t n;
    upload("a", "dir/b.csv", "b", false);
    upload("a", "dir/a.csv", "a", false);
    upload("a", "dir/sub/c.csv", "c", false);
    upload("a", "dir/manifest", "{\"entries\":[]}", true); /* manifests are not data */
    upload("a", "dirx.csv", "not in it", false);
    upload("a", "dir2/d.csv", "not in it", false);
    cr_assert_eq(resolve("a", NULL, "dir/", &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 3);
    assert_reads(paths[0], object("a", "dir/a.csv"));
    assert_reads(paths[1], object("a", "dir/b.csv"));
    assert_reads(paths[2], object("a", "dir/sub/c.csv"));
    cr_assert_eq(resolve("a", NULL, "nothing/", &paths, &n), DS_NOT_FOUND);
    cr_assert_eq(resolve("b", NULL, "dir/", &paths, &n), DS_NOT_FOUND);
    /* A manifest entry may name a folder. */
    ds_file_t m = upload("a", "m", "{\"entries\":[{\"url\":\"dir/sub/\"},{\"url\":\"dirx.csv\"}]}", true);
    cr_assert_eq(resolve("a", m.id, NULL, &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 2);
    assert_reads(paths[0], object("a", "dir/sub/c.csv"));
    assert_reads(paths[1], object("a", "dirx.csv"));
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static char *read_fd(int fd)
{
    static char buf[4096];
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    cr_assert_geq(r, 0);
    buf[r] = '\0';
    close(fd);
    return buf;
}

Test(resolve, scratch_and_adopt_single_file)
{
    const char *dir, **paths;
    size_t n;
    cr_assert_eq(ds_files_scratch_dir(&ctx, "a", &dir), DS_OK, "%s", ctx.err.message);
    cr_assert(strstr(dir, "/files/project_a/scratch/"), "%s", dir);
    struct stat sb;
    cr_assert_eq(stat(dir, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
    const char *p = ds_arena_printf(ctx.arena, "%s/out.csv", dir);
    write_file(p, "id\n1\n");
    ds_file_t f;
    const char *const srcs[] = {p};
    cr_assert_eq(ds_files_adopt(&ctx, "a", srcs, 1, "exports/t.csv", false, false, &f), DS_OK, "%s",
                 ctx.err.message);
    cr_assert_str_eq(f.name, "exports/t.csv");
    cr_assert_eq(f.size, 5);
    cr_assert(!f.sliced && f.expires_at > 0);
    cr_assert_neq(stat(dir, &sb), 0, "the emptied scratch directory was not removed");
    cr_assert_eq(resolve("a", f.id, NULL, &paths, &n), DS_OK);
    int fd;
    ds_file_t info;
    cr_assert_eq(ds_cmd_file_open(&ctx, "a", f.id, &fd, &info), DS_OK, "%s", ctx.err.message);
    cr_assert_str_eq(read_fd(fd), "id\n1\n");
    cr_assert_str_eq(info.sha256, f.sha256);
    /* The name is taken now: a second adopt under it is a conflict and moves nothing. */
    cr_assert_eq(ds_files_scratch_dir(&ctx, "a", &dir), DS_OK);
    p = ds_arena_printf(ctx.arena, "%s/again.csv", dir);
    write_file(p, "id\n2\n");
    const char *const srcs2[] = {p};
    cr_assert_eq(ds_files_adopt(&ctx, "a", srcs2, 1, "exports/t.csv", false, false, &f), DS_ALREADY_EXISTS);
    cr_assert_eq(stat(p, &sb), 0, "a failed adopt moved its source");
}

Test(resolve, adopt_sliced_writes_parts_and_a_manifest)
{
    const char *dir, **paths;
    size_t n;
    cr_assert_eq(ds_files_scratch_dir(&ctx, "a", &dir), DS_OK);
    const char *srcs[3];
    for (int i = 0; i < 3; i++) {
        srcs[i] = ds_arena_printf(ctx.arena, "%s/slice%d.csv", dir, i);
        write_file(srcs[i], ds_arena_printf(ctx.arena, "%d\n", i));
    }
    ds_file_t m;
    cr_assert_eq(ds_files_adopt(&ctx, "a", srcs, 3, "exp/big.csv", true, true, &m), DS_OK, "%s", ctx.err.message);
    cr_assert(m.sliced && m.permanent && m.expires_at == 0);
    cr_assert_str_eq(m.name, "exp/big.csv");
    cr_assert_eq(resolve("a", m.id, NULL, &paths, &n), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(n, 3);
    assert_reads(paths[0], object("a", "exp/big.csv.part0000"));
    assert_reads(paths[2], object("a", "exp/big.csv.part0002"));
    ds_file_t *items;
    size_t k;
    cr_assert_eq(ds_cmd_file_list(&ctx, "a", "exp/", &items, &k), DS_OK);
    cr_assert_eq(k, 4);
    /* Zero slices (an empty export) is a manifest without entries. */
    ds_file_t e;
    cr_assert_eq(ds_files_adopt(&ctx, "a", NULL, 0, "exp/empty.csv", true, false, &e), DS_OK, "%s", ctx.err.message);
    cr_assert_eq(resolve("a", e.id, NULL, &paths, &n), DS_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(ds_files_adopt(&ctx, "a", NULL, 0, "exp/none.csv", false, false, &e), DS_INVALID_ARGUMENT);
}

Test(resolve, adopt_refuses_files_outside_the_area)
{
    ds_file_t f;
    write_file(at("elsewhere.csv"), "x\n");
    const char *const outside[] = {at("elsewhere.csv")};
    cr_assert_eq(ds_files_adopt(&ctx, "a", outside, 1, "x.csv", false, false, &f), DS_INVALID_ARGUMENT);
    /* Nor may it take another project's scratch files, or a's own stored objects. */
    const char *dir;
    cr_assert_eq(ds_files_scratch_dir(&ctx, "b", &dir), DS_OK);
    const char *p = ds_arena_printf(ctx.arena, "%s/b.csv", dir);
    write_file(p, "b\n");
    const char *const theirs[] = {p};
    cr_assert_eq(ds_files_adopt(&ctx, "a", theirs, 1, "x.csv", false, false, &f), DS_INVALID_ARGUMENT);
    ds_file_t stored = upload("a", "stored.csv", "s", false);
    const char *const own[] = {object("a", "stored.csv")};
    cr_assert_eq(ds_files_adopt(&ctx, "a", own, 1, "x.csv", false, false, &f), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_files_adopt(&ctx, "a", theirs, 1, "../x.csv", false, false, &f), DS_INVALID_ARGUMENT);
    (void)stored;
}

Test(resolve, drop_project_removes_rows_and_area)
{
    const char **paths;
    size_t n;
    ds_file_t f = upload("a", "x.csv", "x", false);
    cr_assert_eq(ds_files_drop_project(cfg.data_dir, "a", &err), DS_OK, "%s", err.message);
    struct stat sb;
    cr_assert_neq(stat(at("data/files/project_a"), &sb), 0);
    cr_assert_eq(resolve("a", f.id, NULL, &paths, &n), DS_NOT_FOUND);
    ds_file_t *items;
    cr_assert_eq(ds_cmd_file_list(&ctx, "a", NULL, &items, &n), DS_OK);
    cr_assert_eq(n, 0);
}
