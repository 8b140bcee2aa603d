/*
 * fuzz_types.c - time values (ds_time_check: unix seconds and dates with
 * times and offsets, as changed_since/changed_until carry them) and type names
 * (ds_type_canonical). The input is the value as a client sends it.
 */
#include <stdint.h>

#include "core/types.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_copy(data, size);
    ds_err_t err = {0};
    (void)ds_time_check(s, "changedSince", &err);
    char canonical[DS_TYPE_MAX];
    ds_err_clear(&err);
    if (ds_type_canonical(s, "c", canonical, &err) == DS_OK) {
        char again[DS_TYPE_MAX];
        ds_err_clear(&err);
        /*
         * A canonical name is itself a valid type name. (Not always the same one: REAL's canonical
         * name is FLOAT, and the alias FLOAT means DOUBLE, as in Keboola's base types.)
         */
        if (ds_type_canonical(canonical, "c", again, &err) != DS_OK)
            abort();
    }
    free(s);
    return 0;
}
