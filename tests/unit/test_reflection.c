/*
 * test_reflection.c - grpc/reflection.c over the embedded descriptor set:
 * symbols (nested too) resolve to their files, dependencies come along once,
 * unknown names are NOT_FOUND answers, garbage is refused, and init refuses a
 * service the set does not declare.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

static const char *const services[] = {"keboola.storageDriver.service.StorageDriverService", "grpc.health.v1.Health"};

static void setup(void)
{
    ds_err_t err = {0};
    cr_assert_eq(ds_reflection_init(services, 2, &err), DS_OK, "%s", err.message);
}

static void teardown(void) { ds_reflection_free(); }

static resp_t *ask(req_t *req)
{
    size_t n = grpc__reflection__v1__server_reflection_request__get_packed_size(req);
    uint8_t *buf = malloc(n + 1), *out = NULL;
    size_t out_len = 0;
    grpc__reflection__v1__server_reflection_request__pack(req, buf);
    cr_assert(ds_reflection_answer(buf, n, &out, &out_len));
    free(buf);
    resp_t *r = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
    free(out);
    cr_assert_not_null(r);
    return r;
}

static resp_t *ask_symbol(const char *symbol)
{
    req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    req.file_containing_symbol = (char *)symbol;
    return ask(&req);
}

/* The name of the i-th file of a file_descriptor_response. */
static char *file_name(resp_t *r, size_t i)
{
    cr_assert_eq(r->message_response_case,
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    cr_assert_lt(i, r->file_descriptor_response->n_file_descriptor_proto);
    ProtobufCBinaryData *b = &r->file_descriptor_response->file_descriptor_proto[i];
    Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(NULL, b->len, b->data);
    cr_assert_not_null(fd);
    char *name = strdup(fd->name);
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
    return name;
}

Test(reflection, symbols_resolve_to_their_file_first, .init = setup, .fini = teardown)
{
    static const struct {
        const char *symbol, *file;
    } cases[] = {
        {"keboola.storageDriver.service.StorageDriverService", "proto/service.proto"},
        {"keboola.storageDriver.service.StorageDriverService.Execute", "proto/service.proto"},
        {".keboola.storageDriver.command.common.DriverRequest", "proto/common.proto"},
        {"keboola.storageDriver.command.table.ImportExportShared.ImportOptions", "proto/table.proto"},
        {"keboola.storageDriver.command.project.CreateProjectCommand", "proto/project.proto"},
        {"grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"},
        {"google.protobuf.Any", "google/protobuf/any.proto"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        resp_t *r = ask_symbol(cases[i].symbol);
        char *name = file_name(r, 0);
        cr_assert_str_eq(name, cases[i].file, "%s", cases[i].symbol);
        free(name);
        grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
    }
}

Test(reflection, dependencies_come_along_once, .init = setup, .fini = teardown)
{
    resp_t *r = ask_symbol("keboola.storageDriver.service.StorageDriverService");
    size_t n = r->file_descriptor_response->n_file_descriptor_proto;
    cr_assert_eq(n, 3, "service.proto, common.proto, any.proto; got %zu files", n);
    char *names[3];
    for (size_t i = 0; i < n; i++)
        names[i] = file_name(r, i);
    cr_assert_str_eq(names[1], "proto/common.proto");
    cr_assert_str_eq(names[2], "google/protobuf/any.proto");
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

Test(reflection, unknown_names_are_not_found, .init = setup, .fini = teardown)
{
    resp_t *r = ask_symbol("keboola.storageDriver.NoSuchThing");
    cr_assert_eq(r->message_response_case, GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    cr_assert_eq(r->error_response->error_code, 5);
    cr_assert_not_null(strstr(r->error_response->error_message, "NoSuchThing"));
    cr_assert_str_eq(r->original_request->file_containing_symbol, "keboola.storageDriver.NoSuchThing");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

    req_t empty = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    r = ask(&empty);
    cr_assert_eq(r->error_response->error_code, 3, "a request naming no query is INVALID_ARGUMENT");
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

Test(reflection, list_services_names_the_served_ones, .init = setup, .fini = teardown)
{
    req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = "";
    resp_t *r = ask(&req);
    cr_assert_eq(r->list_services_response->n_service, 2);
    cr_assert_str_eq(r->list_services_response->service[0]->name, services[0]);
    cr_assert_str_eq(r->list_services_response->service[1]->name, services[1]);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

Test(reflection, garbage_is_refused, .init = setup, .fini = teardown)
{
    uint8_t *out = NULL;
    size_t n = 0;
    cr_assert_not(ds_reflection_answer((const uint8_t *)"\xff\xff\xff", 3, &out, &n));
    cr_assert_null(out);
}

Test(reflection, init_refuses_a_service_not_in_the_set)
{
    static const char *const bad[] = {"keboola.storageDriver.service.NoSuchService"};
    ds_err_t err = {0};
    cr_assert_eq(ds_reflection_init(bad, 1, &err), DS_INTERNAL);
    cr_assert_not_null(strstr(err.message, "NoSuchService"));
    ds_reflection_free();
}
