/*
 * canary_leak.c - a libFuzzer target that leaks on purpose. scripts/fuzz.sh runs
 * it before the harnesses, with the same ASAN_OPTIONS, and stops unless
 * LeakSanitizer reports the leak and names canary_lose_block as its caller.
 * An option that quietly switches leak reports off (detect_leaks=0, or
 * malloc_context_size below 2, with which LeakSanitizer reports nothing)
 * then fails `make test` and `make fuzz` instead of letting every run pass.
 * Not named fuzz_*.c, so it is not one of the harnesses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Holds the block's only pointer until the input clears it: the block is then unreachable, a leak. */
static void *volatile canary_last;

__attribute__((noinline)) static void canary_lose_block(size_t size)
{
    canary_last = malloc(size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    canary_lose_block(64 + size);
    canary_last = NULL;
    return 0;
}
