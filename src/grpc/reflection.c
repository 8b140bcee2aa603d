/*
 * reflection.c - gRPC server reflection from the embedded descriptor set.
 * See reflection.h for the design.
 *
 * The set is a FileDescriptorSet: field 1 repeated, one length-delimited
 * FileDescriptorProto each. It is walked as raw protobuf so every file's
 * bytes are served exactly as protoc produced them; each file is also
 * decoded (protoc-c code of google/protobuf/descriptor.proto) to learn its
 * name, dependencies and symbols.
 */
#include "grpc/reflection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

/* Generated from the descriptor set by mk/proto.mk. */
extern const unsigned char ds_descriptor_set[];
extern const size_t ds_descriptor_set_len;

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_resp_t;

/* gRPC status codes used in ErrorResponse. */
#define GRPC_CODE_INVALID_ARGUMENT 3
#define GRPC_CODE_NOT_FOUND 5

typedef struct {
    const uint8_t *data; /* inside ds_descriptor_set */
    size_t len;
    Google__Protobuf__FileDescriptorProto *fd; /* decoded (malloc) */
} file_t;

typedef struct {
    char *name; /* fully qualified, without a leading dot */
    size_t file;
    bool is_message;
} sym_t;

static file_t *files_;
static size_t n_files_;
static sym_t *syms_;
static size_t n_syms_, cap_syms_;
static char **services_;
static size_t n_services_;

/* ---- indexing ---- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static bool add_sym(const char *prefix, const char *name, size_t file, bool is_message)
{
    if (n_syms_ == cap_syms_) {
        size_t cap = cap_syms_ ? cap_syms_ * 2 : 256;
        sym_t *s = realloc(syms_, cap * sizeof(*s));
        if (!s)
            return false;
        syms_ = s;
        cap_syms_ = cap;
    }
    size_t n = strlen(prefix) + strlen(name) + 2;
    char *full = malloc(n);
    if (!full)
        return false;
    snprintf(full, n, "%s%s%s", prefix, *prefix ? "." : "", name);
    syms_[n_syms_++] = (sym_t){.name = full, .file = file, .is_message = is_message};
    return true;
}

static bool index_message(const char *prefix, const Google__Protobuf__DescriptorProto *m, size_t file)
{
    if (!add_sym(prefix, m->name, file, true))
        return false;
    const char *full = syms_[n_syms_ - 1].name;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!index_message(full, m->nested_type[i], file))
            return false;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (!add_sym(full, m->enum_type[i]->name, file, false))
            return false;
    return true;
}

static bool index_file(size_t idx)
{
    const Google__Protobuf__FileDescriptorProto *fd = files_[idx].fd;
    const char *pkg = fd->package ? fd->package : "";
    for (size_t i = 0; i < fd->n_message_type; i++)
        if (!index_message(pkg, fd->message_type[i], idx))
            return false;
    for (size_t i = 0; i < fd->n_enum_type; i++)
        if (!add_sym(pkg, fd->enum_type[i]->name, idx, false))
            return false;
    for (size_t i = 0; i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        if (!add_sym(pkg, s->name, idx, false))
            return false;
        const char *full = syms_[n_syms_ - 1].name;
        for (size_t k = 0; k < s->n_method; k++)
            if (!add_sym(full, s->method[k]->name, idx, false))
                return false;
    }
    return true;
}

static const sym_t *find_sym(const char *name)
{
    if (name && *name == '.')
        name++;
    for (size_t i = 0; name && i < n_syms_; i++)
        if (strcmp(syms_[i].name, name) == 0)
            return &syms_[i];
    return NULL;
}

static long find_file(const char *name)
{
    for (size_t i = 0; name && i < n_files_; i++)
        if (files_[i].fd->name && strcmp(files_[i].fd->name, name) == 0)
            return (long)i;
    return -1;
}

ds_status_t ds_reflection_init(const char *const *services, size_t n, ds_err_t *err)
{
    ds_reflection_free();
    const uint8_t *p = ds_descriptor_set, *end = ds_descriptor_set + ds_descriptor_set_len;
    while (p < end) {
        uint64_t tag, len;
        if (!read_varint(&p, end, &tag) || tag != ((1u << 3) | 2u) || !read_varint(&p, end, &len) ||
            len > (uint64_t)(end - p))
            goto malformed;
        file_t *f = realloc(files_, (n_files_ + 1) * sizeof(*f));
        if (!f)
            goto oom;
        files_ = f;
        files_[n_files_] = (file_t){.data = p, .len = (size_t)len};
        files_[n_files_].fd = google__protobuf__file_descriptor_proto__unpack(NULL, (size_t)len, p);
        if (!files_[n_files_].fd || !files_[n_files_].fd->name)
            goto malformed;
        n_files_++;
        if (!index_file(n_files_ - 1))
            goto oom;
        p += len;
    }
    if (!(services_ = calloc(n ? n : 1, sizeof(*services_))))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!find_sym(services[i])) {
            ds_reflection_free();
            return ds_err_set(err, DS_INTERNAL, "gRPC reflection: service %s is not in the embedded descriptors",
                              services[i]);
        }
        if (!(services_[i] = strdup(services[i])))
            goto oom;
        n_services_ = i + 1;
    }
    return DS_OK;
malformed:
    ds_reflection_free();
    return ds_err_set(err, DS_INTERNAL, "gRPC reflection: the embedded descriptor set does not decode");
oom:
    ds_reflection_free();
    return ds_err_set(err, DS_INTERNAL, "gRPC reflection: out of memory");
}

void ds_reflection_free(void)
{
    for (size_t i = 0; i < n_files_; i++)
        google__protobuf__file_descriptor_proto__free_unpacked(files_[i].fd, NULL);
    free(files_);
    for (size_t i = 0; i < n_syms_; i++)
        free(syms_[i].name);
    free(syms_);
    for (size_t i = 0; i < n_services_; i++)
        free(services_[i]);
    free(services_);
    files_ = NULL;
    syms_ = NULL;
    services_ = NULL;
    n_files_ = n_syms_ = cap_syms_ = n_services_ = 0;
}

/* ---- answers ---- */

/* Adds file idx, then its dependencies (transitively), each once; marks in seen. */
static void collect(size_t idx, bool *seen, size_t *order, size_t *n)
{
    if (seen[idx])
        return;
    seen[idx] = true;
    order[(*n)++] = idx;
    const Google__Protobuf__FileDescriptorProto *fd = files_[idx].fd;
    for (size_t i = 0; i < fd->n_dependency; i++) {
        long d = find_file(fd->dependency[i]);
        if (d >= 0)
            collect((size_t)d, seen, order, n);
    }
}

bool ds_reflection_answer(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    refl_req_t *req = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, data);
    if (!req)
        return false;
    refl_resp_t resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse files = GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse list = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ExtensionNumberResponse ext = GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    char message[512];
    bool *seen = calloc(n_files_ + 1, sizeof(*seen));
    size_t *order = calloc(n_files_ + 1, sizeof(*order));
    ProtobufCBinaryData *blobs = calloc(n_files_ + 1, sizeof(*blobs));
    Grpc__Reflection__V1__ServiceResponse *svc = calloc(n_services_ + 1, sizeof(*svc));
    Grpc__Reflection__V1__ServiceResponse **svcp = calloc(n_services_ + 1, sizeof(*svcp));
    bool ok = false;
    if (!seen || !order || !blobs || !svc || !svcp)
        goto done;

    resp.valid_host = req->host ? req->host : (char *)"";
    resp.original_request = req;
    long file = -1;
    const char *missing = NULL;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        if ((file = find_file(req->file_by_filename)) < 0)
            missing = "file";
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        const sym_t *s = find_sym(req->file_containing_symbol);
        if (s)
            file = (long)s->file;
        else
            missing = "symbol";
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
        const Grpc__Reflection__V1__ExtensionRequest *e = req->file_containing_extension;
        /* The served files are proto3 and declare no extensions. */
        error.error_code = GRPC_CODE_NOT_FOUND;
        snprintf(message, sizeof(message), "no extension %d of type \"%.200s\" is known", e ? e->extension_number : 0,
                 e && e->containing_type ? e->containing_type : "");
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
        const sym_t *s = find_sym(req->all_extension_numbers_of_type);
        if (s && s->is_message) {
            ext.base_type_name = s->name;
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &ext;
        } else {
            error.error_code = GRPC_CODE_NOT_FOUND;
            snprintf(message, sizeof(message), "message type \"%.200s\" not found",
                     req->all_extension_numbers_of_type ? req->all_extension_numbers_of_type : "");
        }
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (size_t i = 0; i < n_services_; i++) {
            grpc__reflection__v1__service_response__init(&svc[i]);
            svc[i].name = services_[i];
            svcp[i] = &svc[i];
        }
        list.n_service = n_services_;
        list.service = svcp;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    default:
        error.error_code = GRPC_CODE_INVALID_ARGUMENT;
        snprintf(message, sizeof(message), "the request names no query (file_by_filename, file_containing_symbol, "
                                           "file_containing_extension, all_extension_numbers_of_type, list_services)");
        break;
    }
    if (missing) {
        error.error_code = GRPC_CODE_NOT_FOUND;
        snprintf(message, sizeof(message), "%s \"%.200s\" not found", missing,
                 missing[0] == 'f' ? req->file_by_filename : req->file_containing_symbol);
    }
    if (file >= 0) {
        size_t n = 0;
        collect((size_t)file, seen, order, &n);
        for (size_t i = 0; i < n; i++)
            blobs[i] = (ProtobufCBinaryData){.len = files_[order[i]].len, .data = (uint8_t *)files_[order[i]].data};
        files.n_file_descriptor_proto = n;
        files.file_descriptor_proto = blobs;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &files;
    }
    if (error.error_code) {
        error.error_message = message;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &error;
    }
    *out_len = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
    if (!(*out = malloc(*out_len ? *out_len : 1)))
        goto done;
    grpc__reflection__v1__server_reflection_response__pack(&resp, *out);
    ok = true;
done:
    free(seen);
    free(order);
    free(blobs);
    free(svc);
    free(svcp);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
    return ok;
}
