/*
 * duckstore/status.h - the status codes and error detail shared by the core
 * and every backend (public: backends see it through backend.h).
 *
 * DESIGN
 * Every failure a user can see is one entry of DS_STATUS_MAP. Each entry yields,
 * from one line: the C constant, a stable snake_case code for JSON bodies, the
 * HTTP status, the gRPC status code and Keboola's default numeric exception code.
 * Nothing else may define its own list of errors. 0 is success, failures negative.
 */
#ifndef DUCKSTORE_STATUS_H
#define DUCKSTORE_STATUS_H

/* XX(NAME, value, "code", http, grpc, keboola_code) */
#define DS_STATUS_MAP(XX)                                                      \
    XX(OK, 0, "ok", 200, 0, 0)                                                 \
    XX(INVALID_ARGUMENT, -1, "invalid_argument", 400, 3, 3000)                 \
    XX(UNAUTHENTICATED, -2, "unauthenticated", 401, 16, 1002)                  \
    XX(PERMISSION_DENIED, -3, "permission_denied", 403, 7, 2007)               \
    XX(NOT_FOUND, -4, "not_found", 404, 5, 2000)                               \
    XX(ALREADY_EXISTS, -5, "already_exists", 409, 6, 2006)                     \
    XX(CONFLICT, -6, "conflict", 409, 9, 3000)                                 \
    XX(PAYLOAD_TOO_LARGE, -7, "payload_too_large", 413, 3, 3000)               \
    XX(QUEUE_FULL, -8, "queue_full", 429, 8, 2006)                             \
    XX(UNSUPPORTED, -9, "not_supported", 501, 12, 900)                         \
    XX(UNAVAILABLE, -10, "unavailable", 503, 14, 1001)                         \
    XX(INTERNAL, -11, "internal", 500, 13, 0)                                  \
    XX(METHOD_NOT_ALLOWED, -12, "method_not_allowed", 405, 12, 3000)           \
    XX(INSUFFICIENT_STORAGE, -13, "insufficient_storage", 507, 8, 1001)        \
    XX(CANCELLED, -14, "cancelled", 499, 1, 0)                                 \
    XX(QUERY_FAILED, -15, "query_failed", 400, 3, 3000)                        \
    XX(RESOURCE_EXHAUSTED, -16, "resource_exhausted", 503, 8, 1001)

/* Keboola's more specific exception codes, set in ds_err_t.keboola_code. */
#define DS_KBC_DATABASE_NOT_FOUND 2002
#define DS_KBC_SCHEMA_NOT_FOUND 2003
#define DS_KBC_TABLE_NOT_FOUND 2004
#define DS_KBC_COLUMN_NOT_FOUND 2005
#define DS_KBC_COLUMNS_MISMATCH 4100
#define DS_KBC_INVALID_SOURCE_DATA 4200
#define DS_KBC_FILE_NOT_FOUND 4201
#define DS_KBC_DATA_TYPE_MISMATCH 4202

typedef enum {
#define DS_STATUS_ENUM(name, value, code, http, grpc, kbc) DS_##name = value,
    DS_STATUS_MAP(DS_STATUS_ENUM)
#undef DS_STATUS_ENUM
} ds_status_t;

/* Maximum length of an error message, including the terminating NUL. */
#define DS_ERR_MSG_MAX 1024

/*
 * Detail of a failure. Callers pass one in; the failing function fills it.
 * keboola_code 0 means "the status's default".
 */
typedef struct {
    ds_status_t status;
    int keboola_code;
    char field[64];             /* the request field at fault, or "" */
    char message[DS_ERR_MSG_MAX];
} ds_err_t;

#endif
