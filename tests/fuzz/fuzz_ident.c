/*
 * fuzz_ident.c - identifiers and file keys: every check of src/core/ident.c,
 * SQL quoting into buffers of every size (the output must be NUL-terminated
 * inside the buffer and, when accepted, round-trip), and the Storage Files
 * path confinement (src/cmd/file_path.c) under a small tree with symlinks
 * pointing inside and outside it. The input is the name or relative path.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cmd/files.h"
#include "core/ident.h"
#include "fuzz_util.h"

static char root[PATH_MAX + 8];

static void tree(void)
{
    const char *dir = fz_make_tmp();
    char p[PATH_MAX * 2];
    snprintf(root, sizeof(root), "%s/root", dir);
    mkdir(root, 0750);
    snprintf(p, sizeof(p), "%s/a", root);
    mkdir(p, 0750);
    snprintf(p, sizeof(p), "%s/a/f.csv", root);
    FILE *f = fopen(p, "w");
    if (f)
        fclose(f);
    snprintf(p, sizeof(p), "%s/in", root);
    if (symlink("a", p) != 0)
        perror("symlink");
    snprintf(p, sizeof(p), "%s/out", root);
    if (symlink("/etc", p) != 0)
        perror("symlink");
    snprintf(p, sizeof(p), "%s/loop", root);
    if (symlink("loop", p) != 0)
        perror("symlink");
    atexit(fz_remove_tmp);
}

/* Undoes ds_ident_quote / ds_sql_literal: the quoted text must give s back. */
static void check_quoted(const char *s, const char *q, char quote)
{
    size_t n = strlen(q);
    if (n < 2 || q[0] != quote || q[n - 1] != quote)
        abort();
    const char *r = s;
    for (size_t i = 1; i + 1 < n; i++) {
        if (q[i] == quote) {
            if (q[i + 1] != quote)
                abort();
            i++;
        }
        if (*r++ != q[i])
            abort();
    }
    if (*r)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        init = true;
        tree();
    }
    char *s = fz_copy(data, size);
    ds_err_t err = {0};
    (void)ds_ident_check_project(s, &err);
    ds_err_clear(&err);
    (void)ds_ident_check_bucket(s, "bucket", &err);
    ds_err_clear(&err);
    (void)ds_ident_check_stage(s, &err);
    ds_err_clear(&err);
    (void)ds_ident_check_bucket_name(s, &err);
    ds_err_clear(&err);
    (void)ds_ident_check_name(s, "column", &err);
    ds_err_clear(&err);
    (void)ds_ident_check_file_key(s, &err);
    ds_err_clear(&err);

    size_t sizes[] = {0, 1, 2, 3, 8, size + 2, 2 * size + 3};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        char *out = malloc(n ? n : 1);
        if (!out)
            break;
        if (ds_ident_quote(s, out, n)) {
            if (strnlen(out, n) == n)
                abort();
            check_quoted(s, out, '"');
        }
        if (ds_sql_literal(s, out, n)) {
            if (strnlen(out, n) == n)
                abort();
            check_quoted(s, out, '\'');
        }
        free(out);
    }

    char out[PATH_MAX];
    for (int missing = 0; missing < 2; missing++) {
        ds_err_clear(&err);
        if (ds_files_confine(root, s, missing, out, sizeof(out), &err) == DS_OK &&
            (strncmp(out, root, strlen(root)) != 0 || (out[strlen(root)] != '/' && out[strlen(root)] != '\0')))
            abort(); /* a path outside the root was accepted */
    }
    char small[16];
    ds_err_clear(&err);
    (void)ds_files_confine(root, s, true, small, sizeof(small), &err);
    free(s);
    return 0;
}
