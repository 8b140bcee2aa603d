"""Backends that cannot start are visible, and load once fixed without a restart.

GET /backends lists every plugin found: registered ones with status "ready" (health ok) or
"unhealthy", and the ones that did not register with status "unconfigured" (a required setting is
missing or a value has the wrong type) or "failed", each with the settings it declares (key, env
var, description, required, configured) and its last error. The operator fixes a setting in the
backend settings file (DUCKSTORE_BACKEND_SETTINGS_FILE) and calls POST /backends/{name}/reload:
the file is read again and the plugin loads, no restart.
"""

import shutil
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, TEST_PLUGIN_DIR, backend_env
from e2e_lib import expect, expect_error
from pg_harness import free_port


@pytest.fixture
def plugin_dir(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    return d


@pytest.fixture
def settings_file(tmp_path):
    f = tmp_path / "backend-settings.env"
    f.write_text("# backend settings\n")
    return f


def by_name(admin):
    return {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}


def test_unconfigured_plugin_is_listed_and_loads_after_reload(server_factory, pg, pg_db, plugin_dir,
                                                              settings_file):
    shutil.copy(TEST_PLUGIN_DIR / "bad_config.so", plugin_dir / "bad_config.so")
    shutil.copy(TEST_PLUGIN_DIR / "failing_init.so", plugin_dir / "failing_init.so")
    s = server_factory(env=backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir),
                                       DUCKSTORE_BACKEND_SETTINGS_FILE=str(settings_file)))
    admin = s.api()
    items = by_name(admin)
    assert items["duckdb"]["status"] == "ready" and items["duckdb"]["last_error"] is None
    bad = items["bad_config"]
    assert bad["status"] == "unconfigured", bad
    assert "DUCKSTORE_BE_BAD_CONFIG_ENDPOINT" in bad["last_error"], bad
    assert bad["path"] == str((plugin_dir / "bad_config.so").resolve())
    settings = {x["key"]: x for x in bad["settings"]}
    assert settings["ENDPOINT"] == {"key": "ENDPOINT", "env": "DUCKSTORE_BE_BAD_CONFIG_ENDPOINT", "type": "string",
                                    "required": True, "configured": False, "default": None,
                                    "help": "where the service listens"}, settings
    assert settings["RETRIES"]["default"] == "3" and settings["RETRIES"]["type"] == "int"
    failing = items["failing_init"]
    assert failing["status"] == "failed" and "licence server" in failing["last_error"], failing

    # Still unconfigured: the reload says why, and nothing changes.
    err = expect_error(admin.post("/backends/bad_config/reload"), 503, "unavailable",
                       mentions=["bad_config", "DUCKSTORE_BE_BAD_CONFIG_ENDPOINT"])
    assert by_name(admin)["bad_config"]["status"] == "unconfigured", err
    # A value of the wrong type is also the operator's to fix.
    settings_file.write_text("DUCKSTORE_BE_BAD_CONFIG_ENDPOINT=svc:1\nDUCKSTORE_BE_BAD_CONFIG_RETRIES=three\n")
    expect_error(admin.post("/backends/bad_config/reload"), 503, "unavailable",
                 mentions=["DUCKSTORE_BE_BAD_CONFIG_RETRIES", "integer"])
    b = by_name(admin)["bad_config"]
    assert b["status"] == "unconfigured" and "RETRIES" in b["last_error"], b
    assert {x["key"]: x["configured"] for x in b["settings"]} == {"ENDPOINT": True, "RETRIES": True,
                                                                  "VERBOSE": False}
    # A broken settings file is a 400 naming the file's line; nothing is retried.
    settings_file.write_text("DUCKSTORE_BE_BAD_CONFIG_ENDPOINT=svc:1\nthis is not a setting\n")
    expect_error(admin.post("/backends/bad_config/reload"), 400, "invalid_argument", mentions=["line 2"])
    # Fixed: it loads, by its file name too, without a restart.
    settings_file.write_text("# fixed\nDUCKSTORE_BE_BAD_CONFIG_ENDPOINT = 'svc:1'\nDUCKSTORE_BE_BAD_CONFIG_RETRIES=5\n")
    got = expect(admin.post("/backends/bad_config.so/reload"), 200)
    assert got["name"] == "bad_config" and got["status"] == "ready" and got["last_error"] is None, got
    assert got["health"]["status"] == "ok" and isinstance(got["capabilities"], dict)
    items = by_name(admin)
    assert items["bad_config"]["status"] == "ready" and items["failing_init"]["status"] == "failed"
    assert [b["name"] for b in expect(admin.get("/backends"), 200)["items"]].count("bad_config") == 1
    # Reloading a registered backend changes nothing; an unknown name is a 404.
    assert expect(admin.post("/backends/bad_config/reload"), 200)["status"] == "ready"
    expect_error(admin.post("/backends/nope/reload"), 404, "not_found", mentions=["nope"])
    p = expect(admin.post("/projects", {"id": "x"}), 201)
    expect_error(admin.with_key(p["api_key"]).post("/backends/bad_config/reload"), 403, "permission_denied")


def test_postgres_unconfigured_then_configured_then_serves(server_factory, pg, pg_db, plugin_dir, settings_file):
    shutil.copy(PLUGIN_DIR / "libds_postgres.so", plugin_dir / "libds_postgres.so")
    s = server_factory(env={"DUCKSTORE_PLUGIN_DIR": str(plugin_dir),
                            "DUCKSTORE_BACKEND_SETTINGS_FILE": str(settings_file)})
    admin = s.api()
    b = by_name(admin)["postgres"]
    assert b["status"] == "unconfigured" and "DUCKSTORE_BE_POSTGRES_DATABASE" in b["last_error"], b
    need = {x["key"]: x for x in b["settings"]}
    assert need["DATABASE"]["required"] is True and need["DATABASE"]["configured"] is False
    assert need["DATABASE"]["help"] and need["HOST"]["help"], need
    expect_error(admin.post("/projects", {"id": "pp", "backend": "postgres"}), 400, "invalid_argument",
                 mentions=["postgres"])
    settings_file.write_text("".join(f"{k}={v}\n" for k, v in pg.env(pg_db).items()))
    got = expect(admin.post("/backends/postgres/reload"), 200)
    assert got["status"] == "ready" and got["builtin"] is False, got
    p = expect(admin.post("/projects", {"id": "pp", "backend": "postgres"}), 201)
    api = admin.with_key(p["api_key"])
    expect(api.post("/projects/pp/buckets", {"stage": "in", "name": "c-x"}), 201)
    expect(api.post("/projects/pp/buckets/in.c-x/tables", {"name": "t", "columns": [{"name": "a"}]}), 201)


def test_unreachable_server_is_unhealthy_with_its_error(server_factory, pg, pg_db, plugin_dir):
    shutil.copy(PLUGIN_DIR / "libds_postgres.so", plugin_dir / "libds_postgres.so")
    env = backend_env(pg, pg_db, DUCKSTORE_PLUGIN_DIR=str(plugin_dir), DUCKSTORE_BE_POSTGRES_PORT=str(free_port()))
    s = server_factory(env=env)
    b = by_name(s.api())["postgres"]
    assert b["status"] == "unhealthy", b
    assert b["last_error"] and b["last_error"] == b["health"]["message"], b
