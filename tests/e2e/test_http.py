"""Request bodies and routing: malformed JSON, non-object bodies, size limit, 404 and 405."""

import re

import pytest

from e2e_lib import (create_bucket, create_project, describe, expect, expect_error, hold_body, list_items,
                     metric, parse_metrics, wait_for)


@pytest.mark.parametrize("raw", ['{"id": "p1",', '{"id": p1}', "{'id': 'p1'}", '{"id": "p1"} trailing',
                                 '{"id": "p1", "name": "x\x01"}'],
                         ids=["truncated", "bare-word", "single-quotes", "trailing-garbage", "control-char"])
def test_malformed_json(server, admin, raw):
    err = expect_error(admin.request("POST", "/projects", data=raw), 400, "invalid_argument")
    assert "json" in err["message"].lower(), f"message does not say JSON: {err['message']!r}"
    assert re.search(r"\d", err["message"]), f"message gives no position: {err['message']!r}"
    assert list_items(admin, "/projects") == []


def test_malformed_json_on_nested_routes(admin):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-a")
    for path in ("/projects/p1/buckets", "/projects/p1/buckets/in.c-a/tables", "/projects/p1"):
        method = "PUT" if path == "/projects/p1" else "POST"
        err = expect_error(admin.request(method, path, data='{"name": '), 400, "invalid_argument")
        assert "json" in err["message"].lower(), err
    assert [b["id"] for b in list_items(admin, "/projects/p1/buckets")] == ["in.c-a"]
    assert list_items(admin, "/projects/p1/buckets/in.c-a/tables") == []


@pytest.mark.parametrize("raw", ["[]", '["p1"]', '"p1"', "5", "null", "true"])
def test_body_not_an_object(admin, raw):
    expect_error(admin.request("POST", "/projects", data=raw), 400, "invalid_argument")
    assert list_items(admin, "/projects") == []


def test_empty_body_where_one_is_required(admin):
    expect_error(admin.request("POST", "/projects", data=""), 400, "invalid_argument")
    expect_error(admin.request("POST", "/projects"), 400, "invalid_argument")
    assert list_items(admin, "/projects") == []


def test_body_over_max_json_bytes(server_factory):
    server = server_factory(env={"DUCKSTORE_MAX_JSON_BYTES": "1024"})
    admin = server.api()
    # Valid JSON padded with whitespace, so only the size can be wrong with it.
    over = '{"id": "big",' + " " * 2000 + '"name": "x"}'
    expect_error(admin.request("POST", "/projects", data=over), 413, "payload_too_large")
    expect_error(admin.get("/projects/big"), 404, "not_found")
    expect_error(admin.post("/projects", {"id": "big2", "name": "x" * 2000}), 413, "payload_too_large")
    # Just under the limit is fine.
    under = '{"id": "small",' + " " * 900 + '"name": "y"}'
    assert len(under) < 1024
    expect(admin.request("POST", "/projects", data=under), 201)
    # Oversized bodies on nested routes too, and nothing is created.
    create_bucket(admin, "small", "c-a")
    cols = [{"name": f"c{i:04d}", "type": "VARCHAR"} for i in range(100)]
    expect_error(admin.post("/projects/small/buckets/in.c-a/tables", {"name": "t", "columns": cols}),
                 413, "payload_too_large")
    assert list_items(admin, "/projects/small/buckets/in.c-a/tables") == []

    # Chunked transfer (no Content-Length) is limited as well.
    def chunks():
        yield b'{"id": "chunked", "name": "'
        for _ in range(20):
            yield b"z" * 100
        yield b'"}'
    r = admin.request("POST", "/projects", data=chunks())
    expect_error(r, 413, "payload_too_large")
    assert [p["id"] for p in list_items(admin, "/projects")] == ["small"]


@pytest.mark.parametrize("path", ["/nope", "/projects/p1/nope", "/projects/p1/buckets/in.c-a/tables/t/nope",
                                  "/v2/storage", "/healthz"])
def test_unknown_route(admin, path):
    create_project(admin, "p1")
    expect_error(admin.get(path), 404, "not_found")
    expect_error(admin.post(path, {}), 404, "not_found")


# A known path with a method it does not serve.
WRONG_METHODS = [
    ("DELETE", "/health"),
    ("POST", "/ready"),
    ("PUT", "/backend/init"),
    ("GET", "/backend/remove"),
    ("DELETE", "/projects"),
    ("PATCH", "/projects/p1"),
    ("POST", "/projects/p1"),
    ("PUT", "/projects/p1/buckets"),
    ("POST", "/projects/p1/buckets/in.c-a"),
    ("PUT", "/projects/p1/buckets/in.c-a/tables"),
    ("POST", "/projects/p1/buckets/in.c-a/tables/t"),
]


@pytest.mark.parametrize("method,path", WRONG_METHODS, ids=[f"{m} {p}" for m, p in WRONG_METHODS])
def test_wrong_method_is_405(admin, method, path):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-a")
    expect(admin.post("/projects/p1/buckets/in.c-a/tables", {"name": "t", "columns": [{"name": "a"}]}), 201)
    r = admin.request(method, path, json_body={} if method in ("POST", "PUT", "PATCH") else None)
    expect_error(r, 405, "method_not_allowed")
    # Nothing changed.
    assert [p["id"] for p in list_items(admin, "/projects")] == ["p1"]
    assert [b["id"] for b in list_items(admin, "/projects/p1/buckets")] == ["in.c-a"]
    assert [t["name"] for t in list_items(admin, "/projects/p1/buckets/in.c-a/tables")] == ["t"]


def test_405_names_allowed_methods(admin):
    """RFC 9110: a 405 carries an Allow header listing the methods the path serves."""
    create_project(admin, "p1")
    r = admin.request("POST", "/projects/p1", json_body={})
    assert r.status_code == 405, describe(r)
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert {"GET", "PUT", "DELETE"} <= allow, f"Allow header: {r.headers.get('Allow')!r}"


def test_a_request_without_a_valid_key_may_carry_only_a_small_body(server_factory):
    """A body is not kept for a request that presents no key, or a key that is not valid: beyond
    DUCKSTORE_UNAUTH_BODY_BYTES it is read and dropped, and the answer is the 401 it would get
    anyway, naming the cap."""
    server = server_factory(env={"DUCKSTORE_UNAUTH_BODY_BYTES": "4KiB"})
    anon = server.api(key=None)
    big = '{"id": "big",' + " " * 100_000 + '"name": "x"}'
    expect_error(anon.request("POST", "/projects", data=big), 401, "unauthenticated",
                 mentions=("no API key", "DUCKSTORE_UNAUTH_BODY_BYTES", "4096"))
    for wrong in (server.api(key="not-a-key"), server.api(key="not-a-key", header="token")):
        expect_error(wrong.request("POST", "/projects", data=big), 401, "unauthenticated",
                     mentions=("invalid API key", "DUCKSTORE_UNAUTH_BODY_BYTES"))
    # Under the cap: the plain 401 of a missing key.
    r = anon.post("/projects", {"id": "small", "name": "y"})
    expect_error(r, 401, "unauthenticated")
    assert "DUCKSTORE_UNAUTH_BODY_BYTES" not in r.text
    # The same large body with a key is read and served.
    admin = server.api()
    expect(admin.request("POST", "/projects", data=big), 201)
    assert [p["id"] for p in list_items(admin, "/projects")] == ["big"]


def test_request_bodies_held_at_once_are_bounded_and_freed(server_factory):
    """DUCKSTORE_BODY_MEMORY bounds the request bodies held in memory over all requests: while a
    slow client holds most of it, a body that does not fit is refused with 503 resource_exhausted
    (nothing changed); once that client goes, the same request is served."""
    server = server_factory(env={"DUCKSTORE_MAX_JSON_BYTES": "1MiB", "DUCKSTORE_BODY_MEMORY": "1MiB"})
    admin = server.api()
    slow = hold_body(server, 900_000)
    try:
        body = '{"id": "second",' + " " * 200_000 + '"name": "n"}'
        expect_error(admin.request("POST", "/projects", data=body), 503, "resource_exhausted",
                     mentions=("DUCKSTORE_BODY_MEMORY",))
        assert list_items(admin, "/projects") == []
    finally:
        slow.close()
    # Its bytes are given back when the connection ends.
    wait_for(lambda: admin.request("POST", "/projects", data=body).status_code == 201,
             "the request to be served once the slow client left", timeout=20)
    assert [p["id"] for p in list_items(admin, "/projects")] == ["second"]
    wait_for(lambda: metric(parse_metrics(admin.get("/metrics").text), "duckstore_http_body_bytes") == 0,
             "every body's bytes to be given back")
