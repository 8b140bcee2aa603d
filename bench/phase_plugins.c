/*
 * phase_plugins.c - the cost of the backend plugin mechanism, in process.
 *
 * Measures, with the project's own registry (linked from CORE_OBJ):
 *   - backend creation: registering the built-in DuckDB backend (its open);
 *   - plugin load: loading a plugin .so from a plugin directory (dlopen,
 *     entry, ABI and settings checks, open), the test plugin tiny.so;
 *   - per-call overhead: a cheap backend method called the way commands call
 *     it (pin the backend in the registry, NULL-method check, call, unpin)
 *     against calling the DuckDB backend's function pointer directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/duckdb/duckdb_backend.h"
#include "backend/registry.h"
#include "bench.h"

#define CALLS 2000000

void bench_phase_plugins(bench_t *b)
{
    ds_err_t err = {0};
    char *dir = bench_fmt("%s/plugins-phase", b->run), *plugins = bench_fmt("%s/plugins", dir);
    bench_mkdirs(plugins);
    bench_copy_file("build/test-plugins/tiny.so", bench_fmt("%s/tiny.so", plugins), false);
    bench_note("plugins: registry in process");

    if (ds_registry_init(dir, (int64_t)1 << 30, 1, 4, &err) != DS_OK)
        bench_die("ds_registry_init: %s", err.message);
    double t0 = bench_now();
    if (ds_registry_add(ds_be_duckdb_entry, NULL, &err) != DS_OK)
        bench_die("registering the DuckDB backend: %s", err.message);
    double create_ms = (bench_now() - t0) * 1000;
    t0 = bench_now();
    ds_registry_load_dir(plugins);
    double load_ms = (bench_now() - t0) * 1000;
    ds_backend_t *tiny = NULL;
    if (ds_registry_get("tiny", &tiny, &err) != DS_OK)
        bench_die("the test plugin did not load: %s", err.message);
    ds_registry_put(tiny);

    ds_backend_t *be = NULL;
    if (ds_registry_get("duckdb", &be, &err) != DS_OK)
        bench_die("duckdb backend: %s", err.message);
    ds_be_runtime_stats_t rs;
    t0 = bench_now();
    for (int i = 0; i < CALLS; i++)
        be->ops->runtime_stats(be->self, &rs);
    double direct_ns = (bench_now() - t0) * 1e9 / CALLS;
    ds_registry_put(be);
    t0 = bench_now();
    for (int i = 0; i < CALLS; i++) {
        ds_backend_t *p = NULL;
        if (ds_registry_get("duckdb", &p, &err) != DS_OK)
            bench_die("lookup: %s", err.message);
        if (p->ops->runtime_stats)
            p->ops->runtime_stats(p->self, &rs);
        ds_registry_put(p);
    }
    double via_ns = (bench_now() - t0) * 1e9 / CALLS;
    ds_registry_shutdown();
    bench_rmtree(dir);
    free(dir);
    free(plugins);

    static const char *const headers[] = {"plugins", "value", NULL};
    bench_table_t *t = bench_table_new("plugins: backend creation, plugin load, ops-interface overhead (in process)",
                                       headers);
    bench_table_row(t, (const char *const[]){"backend creation ms (DuckDB backend open)", bench_num(create_ms, 3)});
    bench_table_row(t, (const char *const[]){"plugin load ms (tiny.so: dlopen, checks, open)", bench_num(load_ms, 3)});
    bench_table_row(t, (const char *const[]){"call direct ns (ops function pointer)", bench_num(direct_ns, 1)});
    bench_table_row(t, (const char *const[]){"call via registry ns (pin, check, call, unpin)", bench_num(via_ns, 1)});
    bench_table_row(t, (const char *const[]){"overhead per call ns", bench_num(via_ns - direct_ns, 1)});
    bench_table_note(t, "the method called is runtime_stats (a mutex and two reads), so the difference is the "
                        "interface's own cost; real commands spend milliseconds in DuckDB.");
    bench_table_print(t);
    json_object_set_new(b->phases, "plugins",
                        json_pack("{s:f,s:f,s:f,s:f,s:f,s:f}", "backend_creation_ms", create_ms, "plugin_load_ms",
                                  load_ms, "call_direct_ns", direct_ns, "call_via_registry_ns", via_ns,
                                  "overhead_per_call_ns", via_ns - direct_ns, "ratio", direct_ns / via_ns));
}
