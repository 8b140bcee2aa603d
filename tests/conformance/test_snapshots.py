"""Snapshots on every backend: where the backend can write and restore them (DuckDB) a dropped
table comes back from its automatic snapshot; where it cannot (the PostgreSQL plugin: no Parquet
export, no tables_restore) the snapshot routes answer 501 naming the backend and what it lacks,
and the destructive operations still work, without a snapshot, saying so in the log."""

from e2e_lib import expect, expect_error


def test_snapshots_or_a_clear_501(proj, backend):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load("t", ["id", "v"], [["1", "a"], ["2", "b"]])
    before = proj.snapshot("t")
    snaps = f"{proj.base}/snapshots"
    if backend == "postgres":
        err = expect_error(proj.api.post(snaps, {"bucket": proj.bucket, "table": "t"}), 501, "not_supported")
        assert "postgres" in err["message"] and "snapshots" in err["message"], err
        expect(proj.api.delete(proj.tpath("t")), 204)
        assert expect(proj.api.get(snaps), 200)["items"] == []
        assert "no automatic snapshot before drop_table" in proj.server.log_text()
        return
    expect(proj.api.delete(proj.tpath("t")), 204)
    items = expect(proj.api.get(snaps), 200)["items"]
    assert [(s["trigger"], s["rows"]) for s in items] == [("drop_table", 2)]
    expect(proj.api.post(f"{snaps}/{items[0]['id']}/restore", {}), 201)
    assert proj.snapshot("t")[1] == before[1]
