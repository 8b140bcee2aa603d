/*
 * test_drv_preview.c - the driver's hand-encoded PreviewTableResponse
 * (ds_drv_encode_preview) is byte for byte what protobuf-c packs for the same
 * message built field by field, and protobuf-c reads it back to the same
 * values: NULLs, empty strings, long values (multi-byte lengths), no rows,
 * many columns.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "grpc/dispatch.h"
#include "proto/table.pb-c.h"

typedef Keboola__StorageDriver__Command__Table__PreviewTableResponse pb_resp_t;
typedef Keboola__StorageDriver__Command__Table__PreviewTableResponse__Row pb_row_t;
typedef Keboola__StorageDriver__Command__Table__PreviewTableResponse__Row__Column pb_cell_t;

/* The response as protobuf-c messages, packed by protobuf-c. */
static uint8_t *reference(const ds_preview_result_t *r, size_t *len)
{
    pb_resp_t resp = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__PREVIEW_TABLE_RESPONSE__INIT;
    resp.n_columns = r->n_columns;
    resp.columns = (char **)r->columns;
    resp.n_rows = r->n_rows;
    resp.rows = calloc(r->n_rows ? r->n_rows : 1, sizeof(pb_row_t *));
    for (size_t i = 0; i < r->n_rows; i++) {
        pb_row_t *row = calloc(1, sizeof(*row));
        keboola__storage_driver__command__table__preview_table_response__row__init(row);
        row->n_columns = r->n_columns;
        row->columns = calloc(r->n_columns ? r->n_columns : 1, sizeof(pb_cell_t *));
        for (size_t c = 0; c < r->n_columns; c++) {
            pb_cell_t *cell = calloc(1, sizeof(*cell));
            keboola__storage_driver__command__table__preview_table_response__row__column__init(cell);
            Google__Protobuf__Value *v = calloc(1, sizeof(*v));
            google__protobuf__value__init(v);
            if (r->rows[i][c]) {
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
                v->string_value = (char *)r->rows[i][c];
            } else {
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
                v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
            }
            cell->columnname = (char *)r->columns[c];
            cell->value = v;
            row->columns[c] = cell;
        }
        resp.rows[i] = row;
    }
    *len = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_eq(protobuf_c_message_pack(&resp.base, buf), *len);
    for (size_t i = 0; i < r->n_rows; i++) {
        for (size_t c = 0; c < r->n_columns; c++) {
            free(resp.rows[i]->columns[c]->value);
            free(resp.rows[i]->columns[c]);
        }
        free(resp.rows[i]->columns);
        free(resp.rows[i]);
    }
    free(resp.rows);
    return buf;
}

static char *text_of(size_t n, unsigned seed)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + (seed + i) % 26);
    s[n] = '\0';
    return s;
}

/* nr rows over nc columns; cell (i, c) is NULL, "" or a text of a length that varies up to 20,000 bytes. */
static void check(size_t nr, size_t nc, unsigned seed)
{
    ds_preview_result_t r = {0};
    char **names = calloc(nc ? nc : 1, sizeof(char *));
    const char ***rows = calloc(nr ? nr : 1, sizeof(char **));
    for (size_t c = 0; c < nc; c++)
        names[c] = text_of(1 + (c * 37 + seed) % 200, seed + (unsigned)c);
    srand(seed);
    for (size_t i = 0; i < nr; i++) {
        rows[i] = calloc(nc ? nc : 1, sizeof(char *));
        for (size_t c = 0; c < nc; c++) {
            int k = rand() % 10;
            size_t n = k < 5 ? (size_t)(rand() % 10) : k < 8 ? (size_t)(100 + rand() % 300) : (size_t)(rand() % 20000);
            rows[i][c] = k == 0 ? NULL : k == 1 ? strdup("") : text_of(n, (unsigned)rand());
        }
    }
    r.columns = (const char **)names;
    r.n_columns = nc;
    r.rows = rows;
    r.n_rows = nr;
    ds_arena_t *a = ds_arena_create();
    size_t len, ref_len;
    uint8_t *mine = ds_drv_encode_preview(a, &r, &len);
    cr_assert_not_null(mine);
    uint8_t *ref = reference(&r, &ref_len);
    cr_assert_eq(len, ref_len, "%zu rows x %zu columns: %zu bytes, protobuf-c packs %zu", nr, nc, len, ref_len);
    cr_assert(memcmp(mine, ref, len) == 0, "%zu rows x %zu columns: the bytes differ from protobuf-c's", nr, nc);
    pb_resp_t *back = keboola__storage_driver__command__table__preview_table_response__unpack(NULL, len, mine);
    cr_assert_not_null(back);
    cr_assert_eq(back->n_rows, nr);
    cr_assert_eq(back->n_columns, nc);
    for (size_t i = 0; i < nr; i++)
        for (size_t c = 0; c < nc; c++) {
            const Google__Protobuf__Value *v = back->rows[i]->columns[c]->value;
            cr_assert_str_eq(back->rows[i]->columns[c]->columnname, names[c]);
            if (!rows[i][c])
                cr_assert_eq(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
            else
                cr_assert_str_eq(v->string_value, rows[i][c]);
        }
    keboola__storage_driver__command__table__preview_table_response__free_unpacked(back, NULL);
    free(ref);
    ds_arena_destroy(&a);
    for (size_t i = 0; i < nr; i++) {
        for (size_t c = 0; c < nc; c++)
            free((char *)rows[i][c]);
        free(rows[i]);
    }
    free(rows);
    for (size_t c = 0; c < nc; c++)
        free(names[c]);
    free(names);
}

Test(drv_preview, the_same_bytes_as_protobuf_c)
{
    check(0, 0, 1);
    check(0, 3, 2);
    check(1, 1, 3);
    check(100, 11, 4);
    check(1000, 3, 5);
    check(7, 300, 6);
}
