/* test_metrics.c - request counters: label values are bounded and escaped. */
#include "core/metrics.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int count_series(const char *text)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, "duckstore_http_requests_total{")) != NULL; p++)
        n++;
    return n;
}

static char *render(void)
{
    ds_buf_t out = {0};
    ds_metrics_render(&out);
    return ds_buf_steal(&out);
}

Test(metrics, unknown_methods_collapse_to_other)
{
    ds_metrics_init();
    ds_metrics_request("http", "GET", "/health", 200, 0.001);
    char junk[32];
    for (int i = 0; i < 500; i++) {
        snprintf(junk, sizeof(junk), "J%d\"\\\n{", i);
        ds_metrics_request("http", junk, "unmatched", 405, 0.001);
    }
    char *text = render();
    cr_assert_eq(count_series(text), 2, "500 junk methods must fold into one series:\n%s", text);
    cr_assert_not_null(strstr(text, "method=\"other\",route=\"unmatched\",status=\"405\"} 500\n"), "%s", text);
    cr_assert_not_null(strstr(text, "method=\"GET\",route=\"/health\",status=\"200\"} 1\n"), "%s", text);
    free(text);
}

Test(metrics, series_are_bounded_and_keep_counting)
{
    ds_metrics_init();
    char route[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(route, sizeof(route), "/r%d", i);
        ds_metrics_request("http", "GET", route, 200, 0.001);
    }
    char *text = render();
    int n = count_series(text);
    cr_assert_leq(n, 1024, "series must stay bounded, got %d", n);
    cr_assert_geq(n, 1000);
    /* Nothing is lost: the overflow series holds the rest. */
    const char *over = strstr(text, "method=\"other\",route=\"other\",status=\"0\"} ");
    cr_assert_not_null(over, "no overflow series:\n%.400s", text);
    unsigned long long rest = strtoull(over + strlen("method=\"other\",route=\"other\",status=\"0\"} "), NULL, 10);
    cr_assert_eq((unsigned long long)(n - 1) + rest, 5000ull);
    free(text);
}

Test(metrics, routes_outside_the_route_alphabet_are_other)
{
    ds_metrics_init();
    ds_metrics_request("http", "GET", "/a\"b\nc", 200, 0.001);
    ds_metrics_request("weird\"", "GET", "/projects/{id}", 200, 0.001);
    ds_metrics_request("grpc", "Execute", "keboola.storageDriver.command.table.CreateTableCommand", 200, 0.001);
    char *text = render();
    cr_assert_not_null(strstr(text, "{transport=\"http\",method=\"GET\",route=\"other\",status=\"200\"} 1\n"), "%s",
                       text);
    cr_assert_not_null(strstr(text, "{transport=\"other\",method=\"GET\",route=\"/projects/{id}\",status=\"200\"} 1\n"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "route=\"keboola.storageDriver.command.table.CreateTableCommand\""), "%s", text);
    /* Every line is a comment or name{labels} value, with no stray quote or newline. */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        int quotes = 0;
        for (char *c = line; *c; c++)
            if (*c == '"' && (c == line || c[-1] != '\\'))
                quotes++;
        cr_assert_eq(quotes % 2, 0, "unbalanced quotes in %s", line);
    }
    free(text);
}
