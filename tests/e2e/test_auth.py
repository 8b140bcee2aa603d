"""Authentication and authorization: 401 without a valid key, 403 for a key outside its scope."""

import pytest

from e2e_lib import (create_bucket, create_project, create_table, expect, expect_error,
                     list_items)

# Routes that need a key, with a concrete path. {p} is an existing project with bucket in.c-b and
# table t.
PROTECTED = [
    ("GET", "/metrics"),
    ("POST", "/backend/init"),
    ("POST", "/backend/remove"),
    ("GET", "/projects"),
    ("POST", "/projects"),
    ("GET", "/projects/{p}"),
    ("PUT", "/projects/{p}"),
    ("DELETE", "/projects/{p}"),
    ("GET", "/projects/{p}/buckets"),
    ("POST", "/projects/{p}/buckets"),
    ("GET", "/projects/{p}/buckets/in.c-b"),
    ("DELETE", "/projects/{p}/buckets/in.c-b"),
    ("GET", "/projects/{p}/buckets/in.c-b/tables"),
    ("POST", "/projects/{p}/buckets/in.c-b/tables"),
    ("GET", "/projects/{p}/buckets/in.c-b/tables/t"),
    ("DELETE", "/projects/{p}/buckets/in.c-b/tables/t"),
]

BODIES = {
    ("POST", "/projects"): {"id": "intruder"},
    ("PUT", "/projects/{p}"): {"name": "hijacked"},
    ("POST", "/projects/{p}/buckets"): {"stage": "in", "name": "c-intruder"},
    ("POST", "/projects/{p}/buckets/in.c-b/tables"): {"name": "intruder", "columns": [{"name": "a"}]},
}


def _setup(admin, pid="a1"):
    p = create_project(admin, pid, name="original")
    create_bucket(admin, pid, "c-b")
    create_table(admin, pid, "in.c-b", "t", [{"name": "a"}])
    return p


def _state(admin, pid="a1"):
    """Everything a user could see about the project and the backend."""
    proj = expect(admin.get(f"/projects/{pid}"), 200)
    return {
        "projects": sorted(p["id"] for p in list_items(admin, "/projects")),
        "name": proj["name"],
        "buckets": sorted(b["id"] for b in list_items(admin, f"/projects/{pid}/buckets")),
        "tables": sorted(t["name"] for t in list_items(admin, f"/projects/{pid}/buckets/in.c-b/tables")),
    }


@pytest.mark.parametrize("method,path", PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_every_protected_route_rejects_missing_and_invalid_keys(server, admin, method, path):
    _setup(admin)
    before = _state(admin)
    anon = server.api(key=None)
    concrete = path.format(p="a1")
    body = BODIES.get((method, path))
    for key, header in ((None, "bearer"), ("not-a-key", "bearer"), ("not-a-key", "token"),
                        (server.admin_key + "x", "bearer"), ("", "bearer")):
        r = anon.request(method, concrete, json_body=body, key=key, header=header)
        expect_error(r, 401, "unauthenticated")
    r = anon.request(method, concrete, json_body=body, key=None,
                     headers={"Authorization": f"Basic {server.admin_key}"})
    expect_error(r, 401, "unauthenticated")
    assert _state(admin) == before, "a rejected request changed state"


@pytest.mark.parametrize("header", ["bearer", "token"])
def test_admin_and_project_keys_work_in_both_headers(server, admin, header):
    p = _setup(admin)
    adm = server.api(header=header)
    proj = server.api(key=p["api_key"], header=header)
    assert [x["id"] for x in list_items(adm, "/projects")] == ["a1"]
    assert expect(proj.get("/projects/a1"), 200)["id"] == "a1"
    assert [b["id"] for b in list_items(proj, "/projects/a1/buckets")] == ["in.c-b"]
    assert expect(proj.get("/projects/a1/buckets/in.c-b/tables/t"), 200)["id"] == "in.c-b.t"


def test_project_key_is_forbidden_in_another_project(server, admin):
    pa = _setup(admin, "a1")
    _setup(admin, "a2")
    before = _state(admin, "a2")
    key_a = admin.with_key(pa["api_key"])
    for method, path in PROTECTED:
        if not path.startswith("/projects/{p}"):
            continue
        r = key_a.request(method, path.format(p="a2"), json_body=BODIES.get((method, path)))
        expect_error(r, 403, "permission_denied")
    assert _state(admin, "a2") == before, "a forbidden request changed the other project"
    # And the key still works at home.
    expect(key_a.get("/projects/a1"), 200)


def test_project_key_is_forbidden_on_admin_routes(server, admin):
    p = _setup(admin)
    before = _state(admin)
    proj = admin.with_key(p["api_key"])
    for method, path in [("POST", "/backend/init"), ("POST", "/backend/remove"), ("GET", "/projects"),
                         ("POST", "/projects"), ("GET", "/metrics"), ("PUT", "/projects/{p}"),
                         ("DELETE", "/projects/{p}")]:
        r = proj.request(method, path.format(p="a1"), json_body=BODIES.get((method, path)))
        expect_error(r, 403, "permission_denied")
    assert _state(admin) == before
    assert server.project_file("a1").exists()


def test_deleted_project_key_stops_working(server, admin):
    p = _setup(admin)
    proj = admin.with_key(p["api_key"])
    expect(admin.delete("/projects/a1"), 204)
    r = proj.get("/projects/a1")
    assert r.status_code in (401, 404), f"key of a deleted project still answers {r.status_code}: {r.text}"
    # A project re-created with the same id gets a new key; the old one must not open it.
    p2 = create_project(admin, "a1")
    assert p2["api_key"] != p["api_key"]
    r = proj.get("/projects/a1")
    assert r.status_code in (401, 403), f"old key opens the re-created project: {r.status_code} {r.text}"
    expect(admin.with_key(p2["api_key"]).get("/projects/a1"), 200)


def test_project_keys_are_distinct_and_not_the_admin_key(server, admin):
    keys = {create_project(admin, f"k{i}")["api_key"] for i in range(5)}
    assert len(keys) == 5
    assert server.admin_key not in keys
    for k in keys:
        assert isinstance(k, str) and len(k) >= 20, f"weak project key {k!r}"
