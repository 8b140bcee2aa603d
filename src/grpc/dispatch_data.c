/*
 * dispatch_data.c - driver handlers for table data and schema changes:
 * preview, import (file, table), export, delete rows, profile, columns and
 * primary keys. Each maps the protobuf command to one ds_cmd_* call (plus a
 * table read where the response needs the table) and the result to the
 * response message of the protocol reference; the handler table is in
 * dispatch.c.
 *
 * File locations: Keboola's FilePath {root, path, fileName} with provider S3
 * names a Storage File of the project by key = path + "/" + fileName (no
 * leading slash; empty path: fileName). root (the S3 bucket) and
 * fileCredentials are not used: Storage Files are local. The files layer
 * confines the key to the project's area (a key leaving it is INVALID_ARGUMENT).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/workspace.h"
#include "grpc/dispatch.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

#define NEW(d, T, desc) ((T *)ds_drv_new((d), &(desc)))

/* Protocol enum values used below (the numbers of the reference, section 1). */
enum {
    FILE_PROVIDER_S3 = 0,
    FILE_FORMAT_CSV = 0,
    FILE_FORMAT_PARQUET = 1,
    SOURCE_SINGLE_FILE = 0,
    SOURCE_SLICED_FILE = 1,
    SOURCE_DIRECTORY = 2,
    COMPRESSION_GZIP = 1,
    IMPORT_FULL = 0,
    IMPORT_INCREMENTAL = 1,
    IMPORT_VIEW = 2,
    IMPORT_CLONE = 3,
    STRATEGY_USER_DEFINED = 1,
    CREATE_MODE_REPLACE = 1,
    ORDER_DESC = 1,
    REF_NOT_IN = 1,
};

typedef Keboola__StorageDriver__Command__Table__TableImportFromFileCommand__CsvTypeOptions pb_csv_options_t;

static ds_err_t *E(ds_drv_t *d) { return &d->ctx->err; }

/* ---- shared mappings ---- */

/* Keboola's DataType as a type name of core/types.h; STRING (the default) compares as stored. */
static ds_status_t data_type(ds_drv_t *d, int t, const char *field, const char **out)
{
    static const char *const names[] = {NULL, "INTEGER", "DOUBLE", "BIGINT", "REAL", "DECIMAL", "TIMESTAMP"};
    if (t < 0 || t >= (int)(sizeof(names) / sizeof(names[0])))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, field, "%s: unknown dataType %d", field, t);
    *out = names[t];
    return DS_OK;
}

static ds_status_t where_filters(ds_drv_t *d, size_t n, pb_where_filter_t **in, ds_where_t *w)
{
    if (!n)
        return DS_OK;
    if (!(w->filters = ds_arena_alloc(d->ctx->arena, sizeof(ds_filter_t) * n)))
        return ds_drv_oom(d);
    for (size_t i = 0; i < n; i++) {
        const pb_where_filter_t *f = in[i];
        ds_filter_t *o = &w->filters[i];
        if (!ds_drv_str(f->columnsname))
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "whereFilters", "whereFilters[%zu].columnsName is required",
                               i);
        if ((int)f->operator_ < DS_OP_EQ || (int)f->operator_ > DS_OP_LE)
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "whereFilters", "whereFilters[%zu]: unknown operator %d", i,
                               (int)f->operator_);
        o->column = f->columnsname;
        o->op = (ds_filter_op_t)f->operator_;
        o->values = (const char **)f->values;
        o->n_values = f->n_values;
        TRY(data_type(d, (int)f->datatype, "whereFilters", &o->data_type));
    }
    w->n_filters = n;
    return DS_OK;
}

static ds_status_t order_by(ds_drv_t *d, size_t n, pb_order_by_t **in, ds_order_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!n)
        return DS_OK;
    if (!(*out = ds_arena_alloc(d->ctx->arena, sizeof(ds_order_t) * n)))
        return ds_drv_oom(d);
    for (size_t i = 0; i < n; i++) {
        if (!ds_drv_str(in[i]->columnname))
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "orderBy", "orderBy[%zu].columnName is required", i);
        (*out)[i].column = in[i]->columnname;
        (*out)[i].desc = (int)in[i]->order == ORDER_DESC;
        TRY(data_type(d, (int)in[i]->datatype, "orderBy", &(*out)[i].data_type));
    }
    *n_out = n;
    return DS_OK;
}

/* ExportFilters (preview and export): limit, change window, where filters. */
static ds_status_t export_filters(ds_drv_t *d, const pb_export_filters_t *f, int64_t *limit, ds_where_t *w)
{
    *limit = 0;
    if (!f)
        return DS_OK;
    if (ds_drv_str(f->fulltextsearch))
        return ds_err_set(E(d), DS_UNSUPPORTED, "filters.fulltextSearch is not supported by duckstore");
    if (f->limit < 0)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "limit", "filters.limit must not be negative");
    *limit = f->limit;
    w->changed_since = ds_drv_str(f->changesince);
    w->changed_until = ds_drv_str(f->changeuntil);
    return where_filters(d, f->n_wherefilters, f->wherefilters, w);
}

/* The Storage File key of a FilePath (see the file comment). */
static ds_status_t file_key(ds_drv_t *d, int provider, const pb_file_path_t *fp, bool directory, const char **key)
{
    *key = NULL;
    if (provider != FILE_PROVIDER_S3)
        return ds_err_set(E(d), DS_UNSUPPORTED,
                          "fileProvider %d is not supported: duckstore's Storage Files take the S3 provider", provider);
    if (!fp)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "filePath", "filePath is required");
    const char *path = fp->path ? fp->path : "";
    while (*path == '/')
        path++;
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    const char *name = ds_drv_str(fp->filename);
    if (!name && !directory)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "filePath", "filePath.fileName is required");
    if (!name)
        *key = n ? ds_arena_printf(d->ctx->arena, "%.*s/", (int)n, path) : NULL;
    else if (directory)
        *key = n ? ds_arena_printf(d->ctx->arena, "%.*s/%s/", (int)n, path, name)
                 : ds_arena_printf(d->ctx->arena, "%s/", name);
    else
        *key = n ? ds_arena_printf(d->ctx->arena, "%.*s/%s", (int)n, path, name) : name;
    if (!*key)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "filePath", "filePath names no file or directory");
    return DS_OK;
}

/* ImportOptions -> the import fields of ds_import_t. from_table allows CLONE. */
static ds_status_t import_options(ds_drv_t *d, const pb_import_options_t *o, bool from_table, ds_import_t *in)
{
    in->strategy = DS_STRATEGY_AUTO;
    in->create_mode = DS_CREATE_NONE;
    if (!o)
        return DS_OK;
    switch ((int)o->importtype) {
    case IMPORT_FULL:
        break;
    case IMPORT_INCREMENTAL:
        in->incremental = true;
        break;
    case IMPORT_VIEW:
        return ds_err_set(E(d), DS_UNSUPPORTED, "importType VIEW is not supported: duckstore has no views");
    case IMPORT_CLONE:
        if (!from_table)
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "importType", "importType CLONE needs a source table");
        in->create_mode = DS_CREATE_REPLACE;
        break;
    default:
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "importType", "unknown importType %d", (int)o->importtype);
    }
    in->dedup = (ds_dedup_t)o->deduptype; /* the same numbers; the command layer rejects others */
    in->dedup_columns = o->n_dedupcolumnsnames ? (const char **)o->dedupcolumnsnames : NULL;
    in->n_dedup_columns = o->n_dedupcolumnsnames;
    in->timestamp_mode = (ds_ts_mode_t)o->timestampmode;
    if (in->timestamp_mode == DS_TS_FROM_SOURCE)
        in->timestamp_column = ds_drv_str(o->timestampcolumn);
    in->convert_empty_to_null = (const char **)o->convertemptyvaluestonulloncolumns;
    in->n_convert_empty_to_null = o->n_convertemptyvaluestonulloncolumns;
    in->import_as_null = (const char **)o->importasnull;
    in->n_import_as_null = o->n_importasnull;
    /* STRING_TABLE is also the unset value: let the table's types decide; USER_DEFINED forces typed. */
    if ((int)o->importstrategy == STRATEGY_USER_DEFINED)
        in->strategy = DS_STRATEGY_TYPED;
    if ((int)o->createmode == CREATE_MODE_REPLACE && !in->incremental)
        in->create_mode = DS_CREATE_REPLACE;
    return DS_OK;
}

static ds_status_t respond_import(ds_drv_t *d, const ds_import_result_t *r)
{
    Keboola__StorageDriver__Command__Table__TableImportResponse *resp =
        NEW(d, Keboola__StorageDriver__Command__Table__TableImportResponse,
            keboola__storage_driver__command__table__table_import_response__descriptor);
    if (!resp || !(resp->timers = ds_drv_ptrs(d, r->n_timers)) ||
        !(resp->importedcolumns = ds_drv_ptrs(d, r->n_imported_columns)))
        return ds_drv_oom(d);
    resp->importedrowscount = r->imported_rows;
    resp->tablerowscount = r->table_rows;
    resp->tablesizebytes = r->table_bytes;
    for (size_t i = 0; i < r->n_timers; i++) {
        Keboola__StorageDriver__Command__Table__TableImportResponse__Timer *t =
            NEW(d, Keboola__StorageDriver__Command__Table__TableImportResponse__Timer,
                keboola__storage_driver__command__table__table_import_response__timer__descriptor);
        if (!t || !(t->duration = ds_arena_printf(d->ctx->arena, "%.6f", r->timers[i].seconds)))
            return ds_drv_oom(d);
        t->name = (char *)(r->timers[i].name ? r->timers[i].name : "");
        resp->timers[i] = t;
    }
    resp->n_timers = r->n_timers;
    for (size_t i = 0; i < r->n_imported_columns; i++)
        resp->importedcolumns[i] = (char *)r->imported_columns[i];
    resp->n_importedcolumns = r->n_imported_columns;
    d->resp = &resp->base;
    return DS_OK;
}

/* ---- import ---- */

ds_status_t ds_drv_h_import_from_file(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__TableImportFromFileCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_import_t in;
    memset(&in, 0, sizeof(in));
    TRY(ds_drv_project(d, &project));
    if (!c->destination)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "destination", "destination is required");
    TRY(ds_drv_table_ref(d, c->destination->n_path, c->destination->path, c->destination->tablename, "destination",
                         &bucket, &table));
    if ((int)c->fileformat == FILE_FORMAT_CSV)
        in.format = DS_FORMAT_CSV;
    else if ((int)c->fileformat == FILE_FORMAT_PARQUET)
        in.format = DS_FORMAT_PARQUET;
    else
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "fileFormat", "unknown fileFormat %d", (int)c->fileformat);

    const ProtobufCMessage *opts = NULL;
    TRY(ds_drv_unpack_any(d, c->formattypeoptions,
                          &keboola__storage_driver__command__table__table_import_from_file_command__csv_type_options__descriptor,
                          "formatTypeOptions", &opts));
    const pb_csv_options_t *csv = (const pb_csv_options_t *)opts;
    int source = csv ? (int)csv->sourcetype : SOURCE_SINGLE_FILE;
    if (source != SOURCE_SINGLE_FILE && source != SOURCE_SLICED_FILE && source != SOURCE_DIRECTORY)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "sourceType", "unknown sourceType %d", source);
    /* A sliced file is a manifest the files layer expands; a directory is a key ending in "/". */
    TRY(file_key(d, (int)c->fileprovider, c->filepath, source == SOURCE_DIRECTORY, &in.file_key));

    snprintf(in.csv.delimiter, sizeof(in.csv.delimiter), "%s", ",");
    snprintf(in.csv.enclosure, sizeof(in.csv.enclosure), "%s", "\"");
    in.csv.header = true;
    if (csv) {
        /*
         * Empty delimiter/enclosure are proto3's "unset": the CSV defaults
         * apply, as for a REST import without the field. The enclosure's
         * default is '"' without escapedBy and none with it (the two are
         * mutually exclusive), so an escapedBy import needs no enclosure.
         */
        if (ds_drv_str(csv->delimiter) && strlen(csv->delimiter) >= sizeof(in.csv.delimiter))
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "delimiter", "delimiter must be exactly one character");
        if (ds_drv_str(csv->enclosure) && strlen(csv->enclosure) >= sizeof(in.csv.enclosure))
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "enclosure", "enclosure must be one character or empty");
        if (csv->escapedby && strlen(csv->escapedby) >= sizeof(in.csv.escaped_by))
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "escapedBy", "escapedBy must be one character or empty");
        if (ds_drv_str(csv->delimiter))
            snprintf(in.csv.delimiter, sizeof(in.csv.delimiter), "%s", csv->delimiter);
        if (ds_drv_str(csv->enclosure))
            snprintf(in.csv.enclosure, sizeof(in.csv.enclosure), "%s", csv->enclosure);
        else if (ds_drv_str(csv->escapedby))
            in.csv.enclosure[0] = '\0';
        snprintf(in.csv.escaped_by, sizeof(in.csv.escaped_by), "%s", csv->escapedby ? csv->escapedby : "");
        in.csv.gzip = (int)csv->compression == COMPRESSION_GZIP;
        in.csv.columns = (const char **)csv->columnsnames;
        in.csv.n_columns = csv->n_columnsnames;
        in.csv.header = csv->n_columnsnames == 0;
    }
    int64_t ignored = c->importoptions ? c->importoptions->numberofignoredlines : 0;
    if (ignored < 0)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "numberOfIgnoredLines", "numberOfIgnoredLines must not be negative");
    /*
     * Keboola counts the header among the ignored lines. With columnsNames the
     * file's lines are skipped as given; without them the first line not
     * skipped is read as the header, so one ignored line is that header.
     */
    in.csv.skip_lines = in.csv.header && ignored > 0 ? ignored - 1 : ignored;
    TRY(import_options(d, c->importoptions, false, &in));

    ds_import_result_t r;
    memset(&r, 0, sizeof(r));
    TRY(ds_cmd_table_import(d->ctx, project, bucket, table, &in, &r));
    return respond_import(d, &r);
}

ds_status_t ds_drv_h_import_from_table(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__TableImportFromTableCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_import_t in;
    memset(&in, 0, sizeof(in));
    TRY(ds_drv_project(d, &project));
    if (!c->destination || !c->source)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, c->source ? "destination" : "source", "%s is required",
                           c->source ? "destination" : "source");
    TRY(ds_drv_table_ref(d, c->destination->n_path, c->destination->path, c->destination->tablename, "destination",
                         &bucket, &table));
    const Keboola__StorageDriver__Command__Table__TableImportFromTableCommand__SourceTableMapping *s = c->source;
    /* A workspace as the source (unload): path is [its object name]. */
    const char *ws = s->n_path == 1 ? ds_drv_ws_id(d, s->path[0]) : NULL;
    if (ws)
        in.src_table = s->tablename;
    else
        TRY(ds_drv_table_ref(d, s->n_path, s->path, s->tablename, "source", &in.src_bucket, &in.src_table));
    /* Keboola's input mapping: rows changed in the last `seconds` seconds, at most `limit` rows (cmd/data.c). */
    in.src_seconds = s->seconds;
    in.src_limit = s->limit;
    if (s->n_columnmappings) {
        in.src_columns = ds_drv_ptrs(d, s->n_columnmappings);
        in.dst_columns = ds_drv_ptrs(d, s->n_columnmappings);
        if (!in.src_columns || !in.dst_columns)
            return ds_drv_oom(d);
        for (size_t i = 0; i < s->n_columnmappings; i++) {
            in.src_columns[i] = s->columnmappings[i]->sourcecolumnname;
            in.dst_columns[i] = ds_drv_str(s->columnmappings[i]->destinationcolumnname)
                                    ? s->columnmappings[i]->destinationcolumnname
                                    : s->columnmappings[i]->sourcecolumnname;
        }
        in.n_mapping = s->n_columnmappings;
    }
    TRY(where_filters(d, s->n_wherefilters, s->wherefilters, &in.src_where));
    TRY(import_options(d, c->importoptions, true, &in));

    ds_import_result_t r;
    memset(&r, 0, sizeof(r));
    if (ws)
        TRY(ds_cmd_table_import_workspace(d->ctx, project, bucket, table, ws, &in, &r));
    else
        TRY(ds_cmd_table_import(d->ctx, project, bucket, table, &in, &r));
    return respond_import(d, &r);
}

/* ---- export ---- */

ds_status_t ds_drv_h_export_to_file(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__TableExportToFileCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_export_t in;
    memset(&in, 0, sizeof(in));
    TRY(ds_drv_project(d, &project));
    if (!c->source)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "source", "source is required");
    TRY(ds_drv_table_ref(d, c->source->n_path, c->source->path, c->source->tablename, "source", &bucket, &table));
    if ((int)c->fileformat == FILE_FORMAT_CSV)
        in.format = DS_FORMAT_CSV;
    else if ((int)c->fileformat == FILE_FORMAT_PARQUET)
        in.format = DS_FORMAT_PARQUET;
    else
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "fileFormat", "unknown fileFormat %d", (int)c->fileformat);
    /* An empty filePath lets duckstore name the file (reported in a message). */
    bool named = c->filepath && (ds_drv_str(c->filepath->filename) || ds_drv_str(c->filepath->path));
    if (named || (int)c->fileprovider != FILE_PROVIDER_S3)
        TRY(file_key(d, (int)c->fileprovider, c->filepath, false, &in.file_name));
    const Keboola__StorageDriver__Command__Table__ImportExportShared__ExportOptions *o = c->exportoptions;
    if (o) {
        in.gzip = o->iscompressed;
        in.columns = (const char **)o->columnstoexport;
        in.n_columns = o->n_columnstoexport;
        TRY(order_by(d, o->n_orderby, o->orderby, &in.order, &in.n_order));
        TRY(export_filters(d, o->filters, &in.limit, &in.where));
    }
    ds_export_result_t r;
    TRY(ds_cmd_table_export(d->ctx, project, bucket, table, &in, &r));
    ds_drv_log(d, DS_DRV_LOG_INFO, "exported %lld rows of %s.%s to Storage File \"%s\" (id %s, %lld bytes%s)",
               (long long)r.rows, bucket, table, r.file_name, r.file_id, (long long)r.bytes,
               r.sliced ? ", sliced: the file is a manifest of its parts" : "");

    ds_be_table_t t;
    TRY(ds_cmd_table_get(d->ctx, project, bucket, table, &t));
    Keboola__StorageDriver__Command__Table__TableExportToFileResponse *resp =
        NEW(d, Keboola__StorageDriver__Command__Table__TableExportToFileResponse,
            keboola__storage_driver__command__table__table_export_to_file_response__descriptor);
    if (!resp || !(resp->tableinfo = ds_drv_table_info(d, &t)))
        return ds_drv_oom(d);
    d->resp = &resp->base;
    return DS_OK;
}

/* ---- preview ---- */

ds_status_t ds_drv_h_preview_table(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__PreviewTableCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_preview_t in;
    memset(&in, 0, sizeof(in));
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "PreviewTableCommand", &bucket, &table));
    in.columns = (const char **)c->columns;
    in.n_columns = c->n_columns;
    TRY(order_by(d, c->n_orderby, c->orderby, &in.order, &in.n_order));
    TRY(export_filters(d, c->filters, &in.limit, &in.where));
    ds_preview_result_t r;
    memset(&r, 0, sizeof(r));
    TRY(ds_cmd_table_preview(d->ctx, project, bucket, table, &in, &r));

    size_t len;
    uint8_t *bytes = ds_drv_encode_preview(d->ctx->arena, &r, &len);
    if (!bytes)
        return ds_drv_oom(d);
    d->resp_desc = &keboola__storage_driver__command__table__preview_table_response__descriptor;
    d->resp_packed.data = bytes;
    d->resp_packed.len = len;
    return DS_OK;
}

/*
 * The wire format of PreviewTableResponse (table.proto):
 *   1 columns  repeated string                       tag 0x0a
 *   2 rows     repeated Row                          tag 0x12
 * Row:     1 columns repeated Column                 tag 0x0a
 * Column:  1 columnName string (left out when empty)  tag 0x0a
 *          2 value google.protobuf.Value             tag 0x12
 *          (3 isTruncated: never set)
 * Value:   oneof kind: 1 null_value NULL_VALUE (0)   0x08 0x00
 *                      3 string_value                tag 0x1a
 * Values are strings as the table holds them (SQL NULL as null), like Keboola's preview.
 */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* A length-delimited field: tag, length, bytes. */
static size_t field_len(size_t n) { return 1 + varint_len(n) + n; }

static uint8_t *put_field(uint8_t *o, uint8_t tag, const void *data, size_t n)
{
    *o++ = tag;
    o = put_varint(o, n);
    memcpy(o, data, n);
    return o + n;
}

/* The Value of a text of tl bytes, or of SQL NULL (text NULL). */
static size_t value_len(const char *text, size_t tl) { return text ? field_len(tl) : 2; }

static size_t cell_len(size_t name_len, const char *text, size_t tl)
{
    return (name_len ? field_len(name_len) : 0) + field_len(value_len(text, tl));
}

uint8_t *ds_drv_encode_preview(ds_arena_t *a, const ds_preview_result_t *r, size_t *len)
{
    size_t nc = r->n_columns, nr = r->n_rows, total = 0;
    size_t *name_len = ds_arena_alloc(a, sizeof(size_t) * (nc ? nc : 1));
    size_t *row_len = ds_arena_alloc(a, sizeof(size_t) * (nr ? nr : 1));
    if (!name_len || !row_len)
        return NULL;
    for (size_t c = 0; c < nc; c++) {
        name_len[c] = strlen(r->columns[c]);
        total += field_len(name_len[c]);
    }
    for (size_t i = 0; i < nr; i++) {
        size_t rl = 0;
        for (size_t c = 0; c < nc; c++) {
            const char *text = r->rows[i][c];
            rl += field_len(cell_len(name_len[c], text, text ? strlen(text) : 0));
        }
        row_len[i] = rl;
        total += field_len(rl);
    }
    uint8_t *buf = ds_arena_alloc(a, total ? total : 1), *o = buf;
    if (!buf)
        return NULL;
    for (size_t c = 0; c < nc; c++)
        o = put_field(o, 0x0a, r->columns[c], name_len[c]);
    for (size_t i = 0; i < nr; i++) {
        *o++ = 0x12;
        o = put_varint(o, row_len[i]);
        for (size_t c = 0; c < nc; c++) {
            const char *text = r->rows[i][c];
            size_t tl = text ? strlen(text) : 0;
            *o++ = 0x0a;
            o = put_varint(o, cell_len(name_len[c], text, tl));
            if (name_len[c])
                o = put_field(o, 0x0a, r->columns[c], name_len[c]);
            *o++ = 0x12;
            o = put_varint(o, value_len(text, tl));
            if (text) {
                o = put_field(o, 0x1a, text, tl);
            } else {
                *o++ = 0x08;
                *o++ = 0x00;
            }
        }
    }
    *len = (size_t)(o - buf);
    return buf;
}

/* ---- delete rows ---- */

ds_status_t ds_drv_h_delete_rows(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__DeleteTableRowsCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_where_t w;
    memset(&w, 0, sizeof(w));
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "DeleteTableRowsCommand", &bucket, &table));
    w.changed_since = ds_drv_str(c->changesince);
    w.changed_until = ds_drv_str(c->changeuntil);
    TRY(where_filters(d, c->n_wherefilters, c->wherefilters, &w));
    if (c->n_wherereftablefilters > 1)
        return ds_err_set(E(d), DS_UNSUPPORTED, "duckstore supports at most one whereRefTableFilters entry");
    if (c->n_wherereftablefilters == 1) {
        const Keboola__StorageDriver__Command__Table__DeleteTableRowsCommand__WhereRefTableFilter *f =
            c->wherereftablefilters[0];
        if (f->n_refpath != 1 || !ds_drv_str(f->refpath[0]) || !ds_drv_str(f->reftable) || !ds_drv_str(f->column))
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "whereRefTableFilters",
                               "whereRefTableFilters needs column, refPath [bucket id] and refTable");
        w.in_column = f->column;
        TRY(ds_drv_bucket(d, f->refpath[0], &w.in_bucket));
        w.in_table = f->reftable;
        w.in_ref_column = ds_drv_str(f->refcolumn) ? f->refcolumn : f->column;
        w.in_negate = (int)f->operator_ == REF_NOT_IN;
    }
    int64_t deleted = 0, rows = 0;
    TRY(ds_cmd_table_delete_rows(d->ctx, project, bucket, table, &w, &deleted, &rows));
    ds_be_table_t t;
    TRY(ds_cmd_table_get(d->ctx, project, bucket, table, &t));
    Keboola__StorageDriver__Command__Table__DeleteTableRowsResponse *resp =
        NEW(d, Keboola__StorageDriver__Command__Table__DeleteTableRowsResponse,
            keboola__storage_driver__command__table__delete_table_rows_response__descriptor);
    if (!resp)
        return ds_drv_oom(d);
    resp->deletedrowscount = deleted;
    resp->tablerowscount = rows;
    resp->tablesizebytes = t.bytes;
    d->resp = &resp->base;
    return DS_OK;
}

/* ---- profile ---- */

/* j as compact JSON text in the arena (NULL when out of memory); j is released. */
static char *json_text(ds_drv_t *d, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *out = s ? ds_arena_strdup(d->ctx->arena, s) : NULL;
    free(s);
    return out;
}

/* A string, or null for NULL; invalid UTF-8 becomes null rather than breaking the JSON. */
static json_t *json_str_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

ds_status_t ds_drv_h_profile_table(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__CreateProfileTableCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "CreateProfileTableCommand", &bucket, &table));
    ds_profile_result_t r;
    memset(&r, 0, sizeof(r));
    TRY(ds_cmd_table_profile(d->ctx, project, bucket, table, &r));

    typedef Keboola__StorageDriver__Command__Table__CreateProfileTableResponse__Column pb_profile_column_t;
    Keboola__StorageDriver__Command__Table__CreateProfileTableResponse *resp =
        NEW(d, Keboola__StorageDriver__Command__Table__CreateProfileTableResponse,
            keboola__storage_driver__command__table__create_profile_table_response__descriptor);
    if (!resp || !(resp->path = ds_drv_ptrs(d, 1)) || !(resp->columns = ds_drv_ptrs(d, r.n_columns)))
        return ds_drv_oom(d);
    resp->n_path = 1;
    resp->path[0] = ds_drv_bucket_name(d, bucket);
    resp->tablename = (char *)table;
    resp->profile = json_text(d, json_pack("{s:I,s:I}", "rowCount", (json_int_t)r.rows, "columnCount",
                                           (json_int_t)r.n_columns));
    if (!resp->profile)
        return ds_drv_oom(d);
    for (size_t i = 0; i < r.n_columns; i++) {
        const ds_column_profile_t *p = &r.columns[i];
        json_t *top = json_array();
        for (size_t k = 0; top && k < p->n_top; k++)
            json_array_append_new(top, json_pack("{s:o,s:I}", "value", json_str_or_null(p->top[k].value), "count",
                                                 (json_int_t)p->top[k].count));
        json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:o,s:o,s:o,s:o}", "type", p->type ? p->type : "", "count",
                              (json_int_t)p->count, "nullCount", (json_int_t)p->nulls, "distinctCount",
                              (json_int_t)p->distinct, "min", json_str_or_null(p->min), "max",
                              json_str_or_null(p->max), "avg", json_str_or_null(p->avg), "topValues",
                              top ? top : json_array());
        pb_profile_column_t *col = NEW(d, pb_profile_column_t,
                                       keboola__storage_driver__command__table__create_profile_table_response__column__descriptor);
        if (!col || !(col->profile = json_text(d, j)))
            return ds_drv_oom(d);
        col->name = (char *)p->name;
        resp->columns[i] = col;
    }
    resp->n_columns = r.n_columns;
    d->resp = &resp->base;
    return DS_OK;
}

/* ---- schema changes ---- */

ds_status_t ds_drv_h_add_column(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__AddColumnCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_column_in_t col;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "AddColumnCommand", &bucket, &table));
    TRY(ds_drv_column_in(d, c->columndefinition, "columnDefinition", &col));
    TRY(ds_cmd_column_add(d->ctx, project, bucket, table, &col));
    return ds_drv_respond_table(d, project, bucket, table);
}

ds_status_t ds_drv_h_alter_column(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__AlterColumnCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    ds_column_in_t col;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "AlterColumnCommand", &bucket, &table));
    TRY(ds_drv_column_in(d, c->desireddefiniton, "desiredDefiniton", &col));
    ds_column_alter_t a = {.nullable = -1};
    if (c->n_attributestoupdate == 0)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "attributesToUpdate",
                           "attributesToUpdate is empty: name what to change (type, length, nullable, default)");
    for (size_t i = 0; i < c->n_attributestoupdate; i++) {
        const char *attr = c->attributestoupdate[i];
        if (strcasecmp(attr, "type") == 0 || strcasecmp(attr, "length") == 0) {
            if (!col.type)
                return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "desiredDefiniton",
                                   "changing %s needs desiredDefiniton.type", attr);
            a.type = col.type;
        } else if (strcasecmp(attr, "nullable") == 0) {
            a.nullable = col.nullable ? 1 : 0;
        } else if (strcasecmp(attr, "default") == 0) {
            a.set_default = true; /* an empty default drops it */
            a.default_value = col.default_value;
        } else {
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "attributesToUpdate",
                               "unknown attribute \"%.64s\" (type, length, nullable, default)", attr);
        }
    }
    TRY(ds_cmd_column_alter(d->ctx, project, bucket, table, col.name, &a));
    return ds_drv_respond_table(d, project, bucket, table);
}

ds_status_t ds_drv_h_drop_column(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__DropColumnCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "DropColumnCommand", &bucket, &table));
    if (!ds_drv_str(c->columnname))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "columnName", "DropColumnCommand.columnName is required");
    return ds_cmd_column_drop(d->ctx, project, bucket, table, c->columnname);
}

ds_status_t ds_drv_h_add_primary_key(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__AddPrimaryKeyCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "AddPrimaryKeyCommand", &bucket, &table));
    TRY(ds_cmd_primary_key_add(d->ctx, project, bucket, table, (const char **)c->primarykeysnames,
                               c->n_primarykeysnames));
    if (c->skipduplicatescheck)
        ds_drv_log(d, DS_DRV_LOG_WARNING, "skipDuplicatesCheck has no effect: duckstore always checks for duplicates");
    return DS_OK;
}

ds_status_t ds_drv_h_drop_primary_key(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__DropPrimaryKeyCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "DropPrimaryKeyCommand", &bucket, &table));
    return ds_cmd_primary_key_drop(d->ctx, project, bucket, table);
}

ds_status_t ds_drv_where_filters(ds_drv_t *d, size_t n, pb_where_filter_t **in, ds_where_t *w)
{
    return where_filters(d, n, in, w);
}
