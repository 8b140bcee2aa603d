/*
 * fuzz_driver.c - the storage driver protocol: one serialized DriverRequest
 * through ds_driver_execute (src/grpc/dispatch.c), exactly as the gRPC server
 * and the HTTP bridge hand it over: wire check, decode, credentials, command
 * lookup, the command's own decode and checks, and its handler, which runs for
 * real against the service core on a temporary data directory (see
 * fuzz_util.h). The seed corpus holds every command of the protocol built the
 * way real clients build them (tests/fuzz/seeds.py), with the admin key.
 * The fixture project is put back every few inputs when one dropped it.
 */
#include <stdint.h>

#include "fuzz_util.h"
#include "grpc/dispatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long runs;
    if (runs++ == 0)
        fz_service();
    else if (runs % 32 == 0)
        fz_fixture();
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    ds_ctx_t ctx = {.arena = ds_arena_create(), .request_id = "fuzz"};
    ds_driver_result_t r;
    ds_driver_execute(&ctx, copy, size, NULL, &r);
    if (r.status == DS_OK && !r.response && r.response_len)
        abort();
    if (r.message[0] && strnlen(r.message, sizeof(r.message)) == sizeof(r.message))
        abort();
    /* Bad input gets an error naming it; INTERNAL is the server's own failure (memory aside). */
    if (r.status == DS_INTERNAL && !strstr(r.message, "out of memory")) {
        fprintf(stderr, "fuzz_driver: internal error: %s\n", r.message);
        abort();
    }
    ds_arena_destroy(&ctx.arena);
    free(copy);
    fz_check_holds();
    return 0;
}
