"""The access log: one JSON line per request on stderr, and never a key in it."""

import re

from e2e_lib import create_bucket, expect, expect_error, project_api


def _norm(route):
    return re.sub(r"\{[^}]*\}", "{}", route or "")


def test_one_json_line_per_request(server, admin):
    p, proj = project_api(admin, "lg1")
    anon = server.api(key=None)
    expect(proj.get("/projects/lg1"), 200)
    create_bucket(proj, "lg1", "c-a")
    expect_error(proj.get("/projects/lg1/buckets/in.c-nope"), 404, "not_found")
    expect_error(anon.get("/projects"), 401, "unauthenticated")
    expect_error(anon.get("/projects/lg1", key="bogus"), 401, "unauthenticated")
    assert admin.get("/metrics").status_code == 200
    expect(proj.post("/projects/lg1/buckets/in.c-a/tables", {"name": "t", "columns": [{"name": "x"}]}), 201)
    expect(admin.delete("/projects/lg1/buckets/in.c-a/tables/t"), 204)
    server.stop()  # every line is written once the process has exited

    # (method, route pattern, status, project or None when no project applies)
    expected = [
        ("POST", "/projects", 201, ...),  # the new project may or may not be named
        ("GET", "/projects/{id}", 200, "lg1"),
        ("POST", "/projects/{}/buckets", 201, "lg1"),
        ("GET", "/projects/{}/buckets/{}", 404, "lg1"),
        ("GET", "/projects", 401, None),
        ("GET", "/projects/{id}", 401, ...),  # unauthenticated: the id in the path may be logged
        ("GET", "/metrics", 200, None),
        ("POST", "/projects/{}/buckets/{}/tables", 201, "lg1"),
        ("DELETE", "/projects/{}/buckets/{}/tables/{}", 204, "lg1"),
    ]
    records = server.request_records()
    ours = [r for r in records if r.get("route") != "/health"]
    assert len(ours) == len(expected), \
        "expected one log line per request:\n" + "\n".join(map(str, ours))

    for rec, (method, route, status, project) in zip(ours, expected):
        for key in ("request_id", "method", "route", "status", "duration_ms"):
            assert key in rec, f"log line lacks {key}: {rec}"
        assert rec["method"] == method, rec
        assert _norm(rec["route"]) == _norm(route), f"route {rec['route']!r} is not the pattern {route!r}"
        assert "lg1" not in rec["route"] and "c-a" not in rec["route"], f"raw path logged as route: {rec}"
        assert rec["status"] == status, rec
        assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0, rec
        assert isinstance(rec["request_id"], str) and rec["request_id"], rec
        if project is None:
            assert rec.get("project") is None, f"project should be null/absent: {rec}"
        elif project is not ...:
            assert rec.get("project") == project, rec
    # /projects/{id} is the documented pattern for the project route.
    assert ours[1]["route"] == "/projects/{id}"

    ids = [r["request_id"] for r in records]
    assert len(ids) == len(set(ids)), "request ids are not unique"
    health = [r for r in records if r.get("route") == "/health"]
    assert health and all(r["method"] == "GET" for r in health)


def test_stderr_is_json_lines_only(server, admin):
    """Log collectors parse stderr line by line: every line must be a JSON object."""
    create_project_and_use(admin)
    server.stop()
    records = server.log_records()  # fails on the first line that is not JSON
    assert records and all(isinstance(r, dict) for r in records)


def create_project_and_use(admin):
    _, proj = project_api(admin, "j1")
    expect(proj.get("/projects/j1"), 200)


def test_keys_are_never_logged(server_factory):
    server = server_factory(env={"DUCKSTORE_LOG_LEVEL": "debug"})
    admin = server.api()
    key = server.admin_key
    p1, proj1 = project_api(admin, "sec1")
    p2, _ = project_api(admin, "sec2")
    pkeys = [p1["api_key"], p2["api_key"]]

    # Successful use in both headers.
    for header in ("bearer", "token"):
        expect(server.api(header=header).get("/projects"), 200)
        expect(server.api(key=pkeys[0], header=header).get("/projects/sec1"), 200)
    create_bucket(proj1, "sec1", "c-a")
    # Failures: wrong project, admin route, mangled headers carrying a real key.
    expect_error(proj1.get("/projects/sec2"), 403, "permission_denied")
    expect_error(proj1.get("/projects"), 403, "permission_denied")
    anon = server.api(key=None)
    for hdr in ({"Authorization": f"Basic {key}"}, {"Authorization": f"Token {pkeys[1]}"},
                {"Authorization": f"Bearer {key}x"}, {"Authorization": f"Bearer  {pkeys[0]}zz"},
                {"X-StorageApi-Token": pkeys[1] + "-"}, {"Authorization": key}):
        expect_error(anon.get("/projects/sec1", headers=hdr), 401, "unauthenticated")
    # Error paths with the admin key: a bad body, a 404, a conflict.
    expect_error(admin.request("POST", "/projects", data='{"id": '), 400, "invalid_argument")
    expect_error(admin.get("/projects/sec1/buckets/in.c-nope"), 404, "not_found")
    expect_error(admin.post("/projects/sec1/buckets", {"stage": "in", "name": "c-a"}), 409, "already_exists")
    expect(admin.delete("/projects/sec2"), 204)
    r = server.api(key=pkeys[1]).get("/projects/sec2")
    assert r.status_code in (401, 404), r.text
    server.restart()
    expect(server.api(key=pkeys[0]).get("/projects/sec1"), 200)
    server.stop()

    log = server.log_bytes()
    assert log.strip(), "the server logged nothing"
    for secret in [key, *pkeys]:
        assert secret.encode() not in log, "a key appears in the log"
        # Half a key is a leak too (e.g. a truncated header echoed in a message).
        assert secret[: len(secret) // 2].encode() not in log, "part of a key appears in the log"
    # stdout is no place for keys either.
    for out in server.base_dir.glob("*.stdout.log"):
        data = out.read_bytes()
        for secret in [key, *pkeys]:
            assert secret.encode() not in data, f"a key appears on stdout ({out.name})"
