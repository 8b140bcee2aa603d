/*
 * fuzz_csv.c - the CSV header reader (src/core/csv.c) under any options.
 * Input: four option bytes (delimiter, enclosure, escape, skip lines; a 0
 * byte means "not set"), then the file's bytes (plain or gzip: zlib reads
 * both). The file lives in a memfd, read through /proc/self/fd. Every name
 * returned must be a string in the arena.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "core/csv.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    ds_csv_opts_t o;
    memset(&o, 0, sizeof(o));
    o.delimiter[0] = (char)data[0];
    o.enclosure[0] = (char)data[1];
    o.escaped_by[0] = (char)data[2];
    o.skip_lines = data[3] % 8;
    int fd = memfd_create("fuzz.csv", 0);
    if (fd < 0)
        abort();
    if (size > 4 && write(fd, data + 4, size - 4) != (ssize_t)(size - 4))
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ds_arena_t *a = ds_arena_create();
    const char **names = NULL;
    size_t n = 0;
    ds_err_t err = {0};
    if (ds_csv_read_header(a, path, &o, &names, &n, &err) == DS_OK)
        for (size_t i = 0; i < n; i++)
            if (!names[i] || strlen(names[i]) > size)
                abort();
    ds_arena_destroy(&a);
    close(fd);
    return 0;
}
