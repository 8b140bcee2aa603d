"""Conformance: sharing and linked buckets follow the backend's "sharing" capability. A backend
that reports it shares a bucket and serves it through a link of a DuckDB project (and across
backends: the link reads the source on its own backend); one without answers 501 naming itself
for share and link alike, and nothing changes."""

from e2e_lib import expect, expect_error
from helpers import Proj


def test_sharing_follows_capabilities(proj, admin, backend, server):
    proj.create_table("o", [{"name": "id", "type": "INTEGER"}, {"name": "state"}])
    proj.load("o", ["id", "state"], [["1", "TX"], ["2", "CA"]])
    caps = {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}
    other = "postgres" if backend == "duckdb" else "duckdb"
    share = f"/projects/{proj.pid}/buckets/{proj.bucket}/share"
    r = proj.api.post(share, {"to": "organization"})
    target = Proj(server, admin, "p2", "duckdb")
    link = {"source_project": proj.pid, "source_bucket": proj.bucket}
    if not caps[backend]["capabilities"]["sharing"]:
        expect_error(r, 501, "not_supported", mentions=[backend, "sharing"])
        expect_error(target.api.post("/projects/p2/buckets/in.c-l/link", link), 403, "permission_denied",
                     ["not shared"])
        assert "sharing" not in expect(proj.api.get(f"/projects/{proj.pid}/buckets/{proj.bucket}"), 200)
        return
    expect(r, 200)
    expect(target.api.post("/projects/p2/buckets/in.c-l/link", link), 201)
    pv = expect(target.api.get("/projects/p2/buckets/in.c-l/tables/o/preview", params={"order_by": "id"}), 200)
    assert pv["rows"] == [["1", "TX"], ["2", "CA"]]
    # a project on a backend without sharing cannot link it
    if not caps[other]["capabilities"]["sharing"]:
        p3 = Proj(server, admin, "p3", other)
        expect_error(p3.api.post("/projects/p3/buckets/in.c-l/link", link), 501, "not_supported", mentions=[other])
