"""changed_since / changed_until in every form Keboola accepts, on every backend.

The host turns unix seconds, ISO 8601 dates and date-times with zones, and relative forms
("-15 minutes", "-2 hours", "-7 days", singular or plural) into one UTC instant before a backend
sees them; these tests load rows whose _timestamp is known (timestamp_mode from_source) and check
export, preview and delete rows against that instant on DuckDB and PostgreSQL alike. Bad forms are a
400 naming the field and the accepted forms, and change nothing.
"""

import datetime as dt

import pytest

from e2e_lib import expect
from helpers import expect_400, utcnow

FMT = "%Y-%m-%d %H:%M:%S"


def ids(rows):
    return sorted((r[0] for r in rows), key=int)


@pytest.fixture
def aged(proj):
    """Table t with one row per age: 1: 10 days ago, 2: 3 days ago, 3: 3 hours ago, 4: 20 minutes ago, 5: 1 minute
    ago (UTC); returns (proj, the reference time)."""
    now = utcnow().replace(microsecond=0)
    ages = [dt.timedelta(days=10), dt.timedelta(days=3), dt.timedelta(hours=3), dt.timedelta(minutes=20),
            dt.timedelta(minutes=1)]
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load("t", ["id", "v", "_timestamp"], [[str(i + 1), "x", (now - a).strftime(FMT)] for i, a in enumerate(ages)],
              timestamp_mode="from_source")
    return proj, now


# (changed_since, ids expected), relative forms count from the request
RELATIVE = [
    ("-15 minutes", ["5"]),
    ("-1 minutes", []),
    ("-2 minute", ["5"]),
    ("-30 minutes", ["4", "5"]),
    ("-1 hour", ["4", "5"]),
    ("-2 hours", ["4", "5"]),
    ("-4 hours", ["3", "4", "5"]),
    ("-1 day", ["3", "4", "5"]),
    ("-7 days", ["2", "3", "4", "5"]),
    ("-2 weeks", ["1", "2", "3", "4", "5"]),
    ("4 hours ago", ["3", "4", "5"]),
]


@pytest.mark.parametrize("since,want", RELATIVE, ids=[s for s, _ in RELATIVE])
def test_relative_changed_since_in_export(aged, since, want):
    proj, _ = aged
    _, rows = proj.export_rows("t", {"changed_since": since})
    assert ids(rows) == want, f"changed_since {since!r}: {rows}"


def test_every_absolute_form_is_the_same_instant(aged):
    proj, now = aged
    cut = now - dt.timedelta(hours=1)  # between row 3 (3 h ago) and row 4 (20 min ago)
    unix = int(cut.replace(tzinfo=dt.timezone.utc).timestamp())
    plus2 = cut + dt.timedelta(hours=2)
    minus0530 = cut - dt.timedelta(hours=5, minutes=30)
    forms = [unix, str(unix), cut.strftime(FMT), cut.strftime("%Y-%m-%dT%H:%M:%SZ"),
             cut.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), plus2.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
             plus2.strftime("%Y-%m-%dT%H:%M:%S+0200"), minus0530.strftime("%Y-%m-%d %H:%M:%S-05:30")]
    for form in forms:
        _, rows = proj.export_rows("t", {"changed_since": form})
        assert ids(rows) == ["4", "5"], f"changed_since {form!r}: {rows}"
        _, rows = proj.export_rows("t", {"changed_until": form})
        assert ids(rows) == ["1", "2", "3"], f"changed_until {form!r}: {rows}"
        p = proj.preview("t", changed_since=str(form), limit=100)
        assert ids(p["rows"]) == ["4", "5"], f"preview changed_since {form!r}: {p}"
    # A date alone is midnight UTC.
    day = (now - dt.timedelta(days=5)).strftime("%Y-%m-%d")
    _, rows = proj.export_rows("t", {"changed_since": day})
    assert ids(rows) == ["2", "3", "4", "5"], f"changed_since {day!r}: {rows}"


def test_relative_window_in_delete_rows(aged):
    proj, _ = aged
    r = proj.api.delete(proj.tpath("t") + "/rows", json_body={"changed_since": "-7 days", "changed_until": "-2 hours"})
    assert expect(r, 200) == {"deleted_rows": 2, "table_rows": 3}
    assert ids(proj.rows("t")) == ["1", "4", "5"]


BAD = ["-1 month", "-15 minutez", "yesterday-ish", "2026-02-30", "2026-01-02T03:04:05+25:00", "1e9",
       "99999999999999999999", "-15", "-15 minutes; DROP TABLE x", "10000-01-01"]


@pytest.mark.parametrize("field", ["changed_since", "changed_until"])
def test_bad_forms_are_a_400_naming_field_and_forms(aged, field):
    proj, _ = aged
    before = proj.snapshot("t")
    for v in BAD:
        if v == "-15":  # unix seconds: valid (1969-12-31 23:59:45)
            continue
        for r in (proj.export_raw("t", {field: v}), proj.preview_raw("t", **{field: v}),
                  proj.api.delete(proj.tpath("t") + "/rows", json_body={field: v})):
            err = expect_400(r, [field, "unix seconds", "ISO 8601", "-15 minutes"])
            assert "Error:" not in err["message"], err
        proj.assert_unchanged("t", before, what=f"{field}={v!r}")
