/*
 * csv.h - the header record of a CSV file.
 *
 * Backends need a file's column names before their engine reads the data
 * (to compare them with the table and to name the reader's columns). One
 * implementation serves all of them: the host offers it to backends as
 * host->csv_header. Handles gzip (zlib reads plain and compressed files
 * alike), enclosures with doubled enclosures, an escape character inside
 * enclosures, CRLF, and a UTF-8 byte order mark. Thread-safe.
 */
#ifndef DS_CORE_CSV_H
#define DS_CORE_CSV_H

#include "core/arena.h"
#include "duckstore/backend.h"

/*
 * Reads the first record after o->skip_lines lines of path as column names,
 * into an arena array. Errors: the file cannot be opened (DS_NOT_FOUND, 4201),
 * the header is over 1 MiB, unterminated, or the file is empty (DS_INVALID_ARGUMENT, 4200).
 */
ds_status_t ds_csv_read_header(ds_arena_t *arena, const char *path, const ds_csv_opts_t *o, const char ***names, size_t *n,
                               ds_err_t *err);

#endif
