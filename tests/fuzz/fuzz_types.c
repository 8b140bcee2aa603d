/*
 * fuzz_types.c - time values (ds_time_parse: unix seconds, dates with times
 * and offsets, relative times, as changed_since/changed_until carry them) and type names
 * (ds_type_canonical). The input is the value as a client sends it.
 */
#include <stdint.h>

#include "core/types.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_copy(data, size);
    ds_err_t err = {0};
    int64_t us;
    if (ds_time_parse(s, INT64_C(1796040000000000), "changedSince", &us, &err) == DS_OK) {
        char text[DS_TIME_TEXT_MAX];
        ds_time_format_utc(us, text);
        /* The text backends receive reads back as the same instant. */
        int64_t again;
        if (ds_time_parse(text, 0, "changedSince", &again, &err) != DS_OK || again != us)
            abort();
    }
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
