"""Operational endpoints: /health, /ready, /metrics, /openapi.json."""

import re
import time

from e2e_lib import (create_project, describe, expect, expect_error, get_metrics,
                     metric, parse_metrics)


def test_health_needs_no_key(server):
    anon = server.api(key=None)
    assert expect(anon.get("/health"), 200) == {"status": "ok"}


def test_ready_needs_no_key(server):
    anon = server.api(key=None)
    assert expect(anon.get("/ready"), 200) == {"status": "ready"}


def test_metrics_requires_admin_key(server, admin):
    p = create_project(admin, "m1")
    expect_error(server.api(key=None).get("/metrics"), 401, "unauthenticated")
    expect_error(server.api(key="wrong").get("/metrics"), 401, "unauthenticated")
    expect_error(admin.with_key(p["api_key"]).get("/metrics"), 403, "permission_denied")


def test_metrics_count_requests_by_route_pattern(server, admin):
    p = create_project(admin, "m1")
    create_project(admin, "m2")
    proj = admin.with_key(p["api_key"])
    expect(admin.get("/projects/m1"), 200)
    expect(proj.get("/projects/m1"), 200)
    expect(admin.get("/projects/m2"), 200)
    expect_error(admin.get("/projects/nope"), 404, "not_found")

    r = admin.get("/metrics")
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    samples = parse_metrics(r.text)

    assert metric(samples, "duckstore_http_requests_total",
                  method="GET", route="/projects/{id}", status="200") == 3
    assert metric(samples, "duckstore_http_requests_total",
                  method="GET", route="/projects/{id}", status="404") == 1
    assert metric(samples, "duckstore_http_requests_total",
                  method="POST", route="/projects", status="201") == 2
    # Routes are patterns: no raw ids in labels (they would explode the series count).
    routes = {l.get("route") for n, l, v in samples if n == "duckstore_http_requests_total"}
    for route in routes:
        assert "m1" not in route and "m2" not in route and "nope" not in route, routes


def test_metrics_latency_histogram_and_gauges(server, admin):
    create_project(admin, "h1")
    for _ in range(3):
        expect(admin.get("/projects/h1"), 200)
    samples = get_metrics(admin)

    buckets = [(l, v) for n, l, v in samples if n == "duckstore_http_request_duration_seconds_bucket"]
    assert buckets, "no duckstore_http_request_duration_seconds_bucket samples"
    assert all("le" in l for l, _ in buckets)
    inf = [v for l, v in buckets if l["le"] == "+Inf"]
    counts = [v for n, l, v in samples if n == "duckstore_http_request_duration_seconds_count"]
    sums = [v for n, l, v in samples if n == "duckstore_http_request_duration_seconds_sum"]
    assert counts and sums, "histogram without _count or _sum"
    # At least: the health polls, 1 create, 3 gets (the /metrics request itself may count or not).
    assert sum(counts) >= 4
    assert sum(inf) == sum(counts), "the +Inf bucket must equal _count"
    assert all(v >= 0 for v in sums)
    # Cumulative buckets never decrease as le grows (per label set).
    series = {}
    for l, v in buckets:
        key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
        le = float("inf") if l["le"] == "+Inf" else float(l["le"])
        series.setdefault(key, []).append((le, v))
    for key, pts in series.items():
        vals = [v for _, v in sorted(pts)]
        assert vals == sorted(vals), f"histogram buckets not cumulative for {key}: {pts}"

    for gauge in ("duckstore_open_projects", "duckstore_open_projects_peak", "duckstore_queue_waiting"):
        v = [v for n, l, v in samples if n == gauge]
        assert v, f"gauge {gauge} missing"
        assert all(x >= 0 for x in v)
    assert metric(samples, "duckstore_open_projects_peak") >= 1, "a project was used, the peak must be >= 1"
    assert metric(samples, "duckstore_open_projects") <= metric(samples, "duckstore_open_projects_peak")


def _norm(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


CORE_ROUTES = {
    "/health": {"get"},
    "/ready": {"get"},
    "/metrics": {"get"},
    "/openapi.json": {"get"},
    "/backend/init": {"post"},
    "/backend/remove": {"post"},
    "/projects": {"get", "post"},
    "/projects/{}": {"get", "put", "delete"},
    "/projects/{}/buckets": {"get", "post"},
    "/projects/{}/buckets/{}": {"get", "delete"},
    "/projects/{}/buckets/{}/tables": {"get", "post"},
    "/projects/{}/buckets/{}/tables/{}": {"get", "delete"},
}

# The endpoint map of REST.md (the product plan). /openapi.json is "the detailed, always-current
# version" of that page.
PLAN_ROUTES = {
    "/projects/{}/buckets/{}/share": {"post", "delete"},
    "/projects/{}/buckets/{}/link": {"post", "delete"},
    "/projects/{}/buckets/{}/grant-readonly": {"post", "delete"},
    "/projects/{}/buckets/{}/tables/{}/preview": {"get"},
    "/projects/{}/buckets/{}/tables/{}/profile": {"post"},
    "/projects/{}/buckets/{}/tables/{}/columns": {"post"},
    "/projects/{}/buckets/{}/tables/{}/columns/{}": {"put", "delete"},
    "/projects/{}/buckets/{}/tables/{}/primary-key": {"post", "delete"},
    "/projects/{}/buckets/{}/tables/{}/rows": {"delete"},
    "/projects/{}/buckets/{}/tables/{}/import/file": {"post"},
    "/projects/{}/buckets/{}/tables/{}/import/table": {"post"},
    "/projects/{}/buckets/{}/tables/{}/export": {"post"},
    "/projects/{}/buckets/{}/tables/{}/alias": {"post"},
    "/projects/{}/buckets/{}/tables/{}/alias-filter": {"put", "delete"},
    "/projects/{}/buckets/{}/tables/{}/alias-sync": {"put"},
    "/projects/{}/snapshots": {"get", "post"},
    "/projects/{}/snapshots/{}": {"get", "delete"},
    "/projects/{}/snapshots/{}/restore": {"post"},
    "/projects/{}/branches": {"get", "post"},
    "/projects/{}/branches/{}": {"get", "delete"},
    "/projects/{}/branches/{}/merge": {"post"},
    "/projects/{}/branches/{}/tables/{}/{}/pull": {"post"},
    "/projects/{}/workspaces": {"get", "post"},
    "/projects/{}/workspaces/{}": {"get", "delete"},
    "/projects/{}/workspaces/{}/clear": {"post"},
    "/projects/{}/workspaces/{}/objects/{}": {"delete"},
    "/projects/{}/workspaces/{}/load": {"post"},
    "/projects/{}/workspaces/{}/query": {"post"},
    "/projects/{}/files/prepare": {"post"},
    "/projects/{}/files": {"get", "post"},
    "/projects/{}/files/{}": {"get", "delete"},
    "/projects/{}/files/{}/download": {"get"},
    "/projects/{}/query": {"post"},
    "/driver/execute": {"post"},
    "/backends": {"get"},
}


def _openapi(server):
    doc = expect(server.api(key=None).get("/openapi.json"), 200)
    assert isinstance(doc, dict)
    assert str(doc.get("openapi", "")).startswith("3."), f"not OpenAPI 3: openapi={doc.get('openapi')!r}"
    assert isinstance(doc.get("info"), dict) and doc["info"].get("title"), "OpenAPI info.title missing"
    assert isinstance(doc.get("paths"), dict)
    return {_norm(p): {m.lower() for m in ops} for p, ops in doc["paths"].items()}


def _missing(paths, wanted):
    missing = []
    for p, methods in wanted.items():
        if p not in paths:
            missing.append(p)
        else:
            missing += [f"{m.upper()} {p}" for m in sorted(methods - paths[p])]
    return missing


def test_openapi_lists_every_core_route(server):
    paths = _openapi(server)
    missing = _missing(paths, CORE_ROUTES)
    assert not missing, f"/openapi.json lacks: {missing}"


def test_openapi_lists_the_rest_md_endpoint_map(server):
    paths = _openapi(server)
    missing = _missing(paths, PLAN_ROUTES)
    assert not missing, f"/openapi.json lacks {len(missing)} routes of REST.md's endpoint map: {missing}"


def test_openapi_documents_only_served_methods(server, admin):
    """The reverse direction: no documented operation answers 405."""
    doc = expect(server.api(key=None).get("/openapi.json"), 200)
    wrong = []
    for path, ops in doc["paths"].items():
        concrete = re.sub(r"\{[^}]*\}", "zz", path)
        for method in ops:
            if method.lower() not in ("get", "post", "put", "delete", "patch"):
                continue
            r = admin.request(method.upper(), concrete,
                              json_body={} if method.lower() in ("post", "put", "patch") else None)
            if r.status_code == 405:
                wrong.append(f"{method.upper()} {path} -> 405")
    assert not wrong, f"documented but not served: {wrong}"


def trims_after_rest(admin, want, tries=5):
    """duckstore_memory_trims_total once it reaches want, each look after 2.5 s without requests (a look
    is a request itself); the last value read when it does not."""
    got = None
    for _ in range(tries):
        time.sleep(2.5)
        got = metric(get_metrics(admin), "duckstore_memory_trims_total")
        if got >= want:
            break
    return got


def test_free_heap_goes_back_once_the_workers_rest(server_factory):
    """Once the request workers rested a second after work, the server gives its free heap back
    (malloc_trim), and again after more work; DUCKSTORE_MEMORY_TRIM=0 never does. (Every look at
    /metrics is work too, so "once per burst, never while busy" is proven by tests/unit/test_pool.c.)"""
    s = server_factory()
    admin = s.api()
    assert metric(get_metrics(admin), "duckstore_memory_trims_total") == 0, "a fresh server has nothing to trim"
    create_project(admin, "m1")
    for _ in range(20):
        expect(admin.get("/projects/m1"), 200)
    first = trims_after_rest(admin, 1)
    assert first >= 1, "no trim after the workers rested"
    for _ in range(20):
        expect(admin.get("/projects/m1"), 200)
    assert trims_after_rest(admin, first + 1) > first, "no trim after the second burst"
    off = server_factory(env={"DUCKSTORE_MEMORY_TRIM": "0"})
    admin = off.api()
    create_project(admin, "m1")
    for _ in range(20):
        expect(admin.get("/projects/m1"), 200)
    assert trims_after_rest(admin, 1, tries=2) == 0, "DUCKSTORE_MEMORY_TRIM=0 trimmed"
