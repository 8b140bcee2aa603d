"""The backend registry over REST: GET/POST/DELETE /backends, plugin loading at startup and at runtime,
every load-failure case (wrong ABI, missing entry symbol, duplicate name, bad configuration, failing
init, entry refusing), path confinement, unloading, and 501 for a capability a backend lacks.

The failing plugins are built from tests/plugins/*.c into build/test-plugins/ by make."""

import os
import shutil
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, TEST_PLUGIN_DIR, backend_env
from e2e_lib import expect, expect_error

BAD_PLUGINS = {
    "wrong_abi.so": ["ABI version"],
    "no_entry.so": ["ds_backend_entry"],
    "dup_name.so": ["duckdb", "already registered"],
    "bad_config.so": ["DUCKSTORE_BE_BAD_CONFIG_ENDPOINT"],
    "failing_init.so": ["failing_init", "licence server"],
    "null_entry.so": ["entry function returned no backend"],
}


@pytest.fixture
def plugin_dir(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    return d


def install(plugin_dir, name, source=TEST_PLUGIN_DIR):
    src = source / name
    assert src.exists(), f"{src} is missing: build it with `make` (mk/plugins.mk)"
    shutil.copy(src, plugin_dir / name)
    return name


def listed(admin):
    """Every item of GET /backends: registered backends and plugins found that did not register."""
    return expect(admin.get("/backends"), 200)["items"]


def names(admin):
    """The registered backends (status ready or unhealthy)."""
    return [b["name"] for b in listed(admin) if b["status"] in ("ready", "unhealthy")]


def test_list_shape(server, admin):
    items = expect(admin.get("/backends"), 200)["items"]
    by = {b["name"]: b for b in items}
    assert list(by) == ["duckdb", "postgres"]
    for b in items:
        assert isinstance(b["version"], str) and b["version"]
        assert b["health"]["status"] == "ok" and b["health"]["message"] is None
        caps = b["capabilities"]
        for key in ("typed_columns", "import", "export", "profile", "schema_changes", "format_csv", "format_parquet",
                    "case_sensitive_names", "import_formats", "export_formats", "unsupported_filter_operators"):
            assert key in caps, (b["name"], key)
        assert isinstance(b["settings"], list)
    assert by["duckdb"]["builtin"] is True and by["duckdb"]["path"] is None
    pgb = by["postgres"]
    assert pgb["builtin"] is False and pgb["path"].endswith("libds_postgres.so")
    assert pgb["capabilities"]["export_formats"] == ["csv"] and pgb["capabilities"]["format_parquet"] is False
    keys = {s["key"]: s for s in pgb["settings"]}
    for k in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE", "POOL_SIZE"):
        assert k in keys, keys
        assert keys[k]["env"] == f"DUCKSTORE_BE_POSTGRES_{k}"
    assert keys["DATABASE"]["required"] is True and keys["DATABASE"]["configured"] is True
    assert keys["PORT"]["type"] == "int" and keys["PASSWORD"]["configured"] is False
    assert "value" not in keys["PASSWORD"], "setting values are never shown"


def test_backends_are_admin_only(server, admin):
    p = expect(admin.post("/projects", {"id": "x"}), 201)
    expect_error(admin.with_key(p["api_key"]).get("/backends"), 403, "permission_denied")
    expect_error(admin.with_key(None).get("/backends"), 401, "unauthenticated")
    expect_error(admin.with_key(p["api_key"]).post("/backends", {"path": "x.so"}), 403, "permission_denied")
    expect_error(admin.with_key(p["api_key"]).delete("/backends/postgres"), 403, "permission_denied")


def test_startup_skips_every_bad_plugin_with_a_warning(server_factory, pg, pg_db, plugin_dir):
    for name in list(BAD_PLUGINS) + ["tiny.so"]:
        install(plugin_dir, name)
    shutil.copy(PLUGIN_DIR / "libds_postgres.so", plugin_dir / "libds_postgres.so")
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir)))
    admin = s.api()
    assert names(admin) == ["duckdb", "postgres", "tiny"]
    warnings = [r for r in s.log_records() if r.get("level") == "warn" and "skipped" in r.get("msg", "")]
    for name, mentions in BAD_PLUGINS.items():
        found = [w["msg"] for w in warnings if name in w["msg"]]
        assert len(found) == 1, f"no single startup warning for {name}: {[w['msg'] for w in warnings]}"
        for m in mentions:
            assert m in found[0], (name, m, found[0])
    # Each skipped plugin is listed too, by file, with why it did not start.
    by_file = {Path(b["path"]).name: b for b in listed(admin) if b["status"] not in ("ready", "unhealthy")}
    assert sorted(by_file) == sorted(BAD_PLUGINS), by_file
    for name, mentions in BAD_PLUGINS.items():
        b = by_file[name]
        assert b["status"] == ("unconfigured" if name == "bad_config.so" else "failed"), b
        for m in mentions:
            assert m in b["last_error"], (name, m, b)
        assert b["capabilities"] is None and b["health"] is None, b
    assert [b["name"] for b in listed(admin)].count("duckdb") == 1, "a plugin named like a registered backend " \
        "is listed by its file name"


@pytest.mark.parametrize("plugin", sorted(BAD_PLUGINS))
def test_runtime_load_failure_is_400_and_registers_nothing(server_factory, pg, pg_db, plugin_dir, plugin):
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir)))
    admin = s.api()
    before = names(admin)
    install(plugin_dir, plugin)
    err = expect_error(admin.post("/backends", {"path": plugin}), 400, "invalid_argument")
    for m in BAD_PLUGINS[plugin]:
        assert m in err["message"], (m, err)
    assert names(admin) == before
    # The attempt is visible: the plugin is listed with the same error.
    found = [b for b in listed(admin) if b["path"] and Path(b["path"]).name == plugin]
    assert len(found) == 1 and found[0]["status"] in ("unconfigured", "failed"), found
    assert found[0]["last_error"] == err["message"], (found, err)


def test_bad_configuration_wrong_type_and_then_good(server_factory, pg, pg_db, plugin_dir):
    install(plugin_dir, "bad_config.so")
    env = backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir), DUCKSTORE_BE_BAD_CONFIG_ENDPOINT="x:1",
                      DUCKSTORE_BE_BAD_CONFIG_RETRIES="three")
    s = server_factory(env=env)
    admin = s.api()
    assert "bad_config" not in names(admin)
    err = expect_error(admin.post("/backends", {"path": "bad_config.so"}), 400, "invalid_argument")
    assert "DUCKSTORE_BE_BAD_CONFIG_RETRIES" in err["message"] and "integer" in err["message"]
    s.stop()
    s.extra_env["DUCKSTORE_BE_BAD_CONFIG_RETRIES"] = "5"
    s.extra_env["DUCKSTORE_BE_BAD_CONFIG_VERBOSE"] = "maybe"
    s.start()
    err = expect_error(s.api().post("/backends", {"path": "bad_config.so"}), 400, "invalid_argument")
    assert "DUCKSTORE_BE_BAD_CONFIG_VERBOSE" in err["message"]
    s.stop()
    s.extra_env["DUCKSTORE_BE_BAD_CONFIG_VERBOSE"] = "true"
    s.start()
    assert "bad_config" in names(s.api()), "with good settings the plugin loads at startup"


def test_duplicate_runtime_load(server, admin):
    err = expect_error(admin.post("/backends", {"path": "libds_postgres.so"}), 400, "invalid_argument")
    assert "postgres" in err["message"] and "already registered" in err["message"]
    assert names(admin) == ["duckdb", "postgres"]


def test_path_confinement(server_factory, pg, pg_db, plugin_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    install(outside, "tiny.so")
    os.symlink(outside / "tiny.so", plugin_dir / "link.so")
    (plugin_dir / "sub").mkdir()
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir)))
    admin = s.api()
    assert "tiny" not in names(admin), "a symlink out of the plugin directory was loaded at startup"
    for path, mention in [("../outside/tiny.so", ".."), ("sub/../../outside/tiny.so", ".."),
                          (str(outside / "tiny.so"), "outside"), ("link.so", "outside"), ("missing.so", "missing.so"),
                          ("sub", "not a regular file"), ("", "path")]:
        err = expect_error(admin.post("/backends", {"path": path}), 400, "invalid_argument")
        assert mention in err["message"], (path, err)
    expect_error(admin.post("/backends", {}), 400, "invalid_argument")
    assert "tiny" not in names(admin)
    # Inside the directory, relative or absolute, it loads.
    install(plugin_dir / "sub", "tiny.so")
    got = expect(admin.post("/backends", {"path": str(plugin_dir / "sub" / "tiny.so")}), 201)
    assert got["name"] == "tiny" and got["path"] == str((plugin_dir / "sub" / "tiny.so").resolve())


def test_no_plugin_directory_means_no_runtime_loading(server_factory):
    s = server_factory()
    err = expect_error(s.api().post("/backends", {"path": "tiny.so"}), 400, "invalid_argument")
    assert "DUCKSTORE_PLUGIN_DIR" in err["message"]


def test_missing_capability_is_501_and_unload_rules(server_factory, pg, pg_db, plugin_dir):
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir)))
    admin = s.api()
    install(plugin_dir, "tiny.so")
    tiny = expect(admin.post("/backends", {"path": "tiny.so"}), 201)
    assert tiny["name"] == "tiny" and tiny["capabilities"]["profile"] is False
    assert tiny["capabilities"]["unsupported_filter_operators"] == ["gt", "lt"]
    assert tiny["capabilities"]["case_sensitive_names"] is True
    assert {x["key"] for x in tiny["settings"]} == {"GREETING"}
    p = expect(admin.post("/projects", {"id": "tp", "backend": "tiny"}), 201)
    assert p["backend"] == "tiny"
    api = admin.with_key(p["api_key"])
    t = "/projects/tp/buckets/in.c-x/tables/t"
    for method, path, body, mentions in [
        ("POST", t + "/profile", {}, ["profile"]),
        ("POST", t + "/export", {}, ["export"]),
        ("POST", t + "/import/file", {"file_id": "nope"}, ["import"]),
        ("POST", t + "/columns", {"name": "c"}, ["schema"]),
        ("DELETE", t + "/primary-key", None, ["schema"]),
        ("POST", "/projects/tp/buckets/in.c-x/tables", {"name": "t", "columns": [{"name": "a", "type": "INTEGER"}]},
         ["typed"]),
        ("GET", t + "/preview?where=a:gt:1", None, ["gt"]),
    ]:
        r = api.request(method, path, json_body=body)
        err = expect_error(r, 501, "not_supported", mentions=["tiny"] + mentions)
        assert err.get("keboola_code") is not None
    # Used by a project: cannot go. Built in: cannot go. Unknown: 404.
    expect_error(admin.delete("/backends/tiny"), 409, "conflict", mentions=["tp"])
    expect_error(admin.delete("/backends/duckdb"), 409, "conflict", mentions=["built in"])
    expect_error(admin.delete("/backends/nope"), 404, "not_found")
    assert "tiny" in names(admin)
    expect(admin.delete("/projects/tp"), 204)
    expect(admin.delete("/backends/tiny"), 204)
    assert "tiny" not in names(admin)
    expect_error(admin.post("/projects", {"id": "tp2", "backend": "tiny"}), 400, "invalid_argument")
    # And it loads again.
    expect(admin.post("/backends", {"path": "tiny.so"}), 201)
    expect(admin.post("/projects", {"id": "tp2", "backend": "tiny"}), 201)


def test_project_on_unloaded_backend_after_restart(server_factory, pg, pg_db, plugin_dir):
    install(plugin_dir, "tiny.so")
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir)))
    admin = s.api()
    p = expect(admin.post("/projects", {"id": "tp", "backend": "tiny"}), 201)
    assert "tiny" in names(admin)
    s.stop()
    os.unlink(plugin_dir / "tiny.so")
    s.start()
    admin = s.api()
    # The project stays on its backend; while that is not loaded, it answers 503 and names it.
    expect_error(admin.with_key(p["api_key"]).get("/projects/tp"), 503, "unavailable", mentions=["tiny"])
    install(plugin_dir, "tiny.so")
    expect(admin.post("/backends", {"path": "tiny.so"}), 201)
    assert expect(admin.with_key(p["api_key"]).get("/projects/tp"), 200)["backend"] == "tiny"


def test_concurrent_requests_while_loading_and_unloading(server_factory, pg, pg_db, plugin_dir):
    import threading
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir)))
    admin = s.api()
    install(plugin_dir, "tiny.so")
    p = expect(admin.post("/projects", {"id": "dp", "backend": "duckdb"}), 201)
    api = admin.with_key(p["api_key"])
    stop = threading.Event()
    failures = []

    def reader():
        while not stop.is_set():
            r = api.get("/projects/dp")
            if r.status_code != 200:
                failures.append(r.text)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(10):
            expect(admin.post("/backends", {"path": "tiny.so"}), 201)
            expect(admin.get("/backends"), 200)
            expect(admin.delete("/backends/tiny"), 204)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert names(admin) == ["duckdb"]


def test_the_history_sweep_leaves_a_backend_without_history_alone(server_factory, pg, pg_db, plugin_dir):
    """A project whose backend keeps no history (no history_expire) is opened by the history sweep once, to
    learn its backend, and then left alone: the sweep used to open it every period for nothing."""
    import time

    from e2e_lib import get_metrics, metric

    install(plugin_dir, "tiny.so")
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir),
                                       DUCKSTORE_HISTORY_SWEEP_SECONDS="1"))
    admin = s.api()
    expect(admin.post("/projects", {"id": "tp", "backend": "tiny"}), 201)

    def counts():
        m = get_metrics(admin)
        return (metric(m, "duckstore_history_sweep_projects_total"),
                metric(m, "duckstore_history_sweep_left_alone_total"))

    deadline = time.monotonic() + 10
    while counts()[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    swept0, alone0 = counts()
    assert swept0 == 1, f"the sweep opened the tiny project {swept0} times before the check began"
    time.sleep(3.5)
    swept, alone = counts()
    assert swept == swept0, f"the sweep opened a project without history {swept - swept0} more times"
    assert alone >= alone0 + 2, "the sweep did not run, or did not count the project it left alone"
