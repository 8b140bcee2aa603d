"""Inputs over the driver protocol (gRPC and the bridge) mean what they mean over REST.

CSV options of TableImportFromFileCommand behave as the same options over REST: every combination
of enclosure and escapedBy that proto3 can express imports the same rows (or fails the same way) over
gRPC, over the bridge and over REST. proto3 cannot tell an empty enclosure from a missing one, so an
empty enclosure means REST's default: '"', or none when escapedBy is given.

Filter values (strings in the protocol) are compared exactly in the column's type, and a value the
type cannot hold is INVALID_ARGUMENT naming it."""

import grpc
import pytest

from driver_lib import DriverError, table_pb2
from test_driver_data import BUCKET, CSV, Project, T, X

# Escaped, unenclosed fields: an escaped delimiter, an escaped escape, an escaped newline and a quote.
ESCAPED = b'id,text\n1,a\\,b\n2,back\\\\slash\n3,two\\\nlines\n4,say "hi"\n'
EXPECTED = [["1", "a,b"], ["2", "back\\slash"], ["3", "two\nlines"], ["4", 'say "hi"']]
PLAIN = b'id,text\n1,"a,b"\n2,"say ""hi"""\n'

# (enclosure, escapedBy) over the driver -> the REST csv object meaning the same.
CASES = [
    ("", "\\", {"escaped_by": "\\"}),
    ("", "\\", {"enclosure": "", "escaped_by": "\\"}),
    ('"', "\\", {"enclosure": '"', "escaped_by": "\\"}),
    ("'", "\\", {"enclosure": "'", "escaped_by": "\\"}),
    ("", "", {}),
    ('"', "", {"enclosure": '"', "escaped_by": ""}),
]


@pytest.fixture
def proj(server, driver):
    return Project(server, driver)


def rest_import(proj, table, key, csv):
    url = f"{proj.server.url}/projects/{proj.pid}/buckets/{BUCKET}/tables/{table}/import/file"
    return proj.http.post(url, json={"file_key": key, "csv": csv}, timeout=60)


def rest_rows(proj, table):
    url = f"{proj.server.url}/projects/{proj.pid}/buckets/{BUCKET}/tables/{table}/preview"
    r = proj.http.get(url, params={"order_by": "id"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["rows"]


@pytest.mark.parametrize("enclosure,escaped_by,rest_csv", CASES)
def test_escaped_by_matches_rest(proj, enclosure, escaped_by, rest_csv):
    proj.upload("escaped.csv", ESCAPED if escaped_by else PLAIN)
    for name in ("by_driver", "by_rest"):
        proj.create_table(name, [T(name="id", nullable=True), T(name="text", nullable=True)], pk=["id"])

    rest = rest_import(proj, "by_rest", "escaped.csv", rest_csv)
    cmd = proj.import_file("by_driver", "", "escaped.csv", CSV(enclosure=enclosure, escapedBy=escaped_by),
                           numberOfIgnoredLines=1)
    try:
        proj.run(cmd, table_pb2.TableImportResponse)
        driver_error = None
    except DriverError as e:
        driver_error = e

    if rest.status_code != 200:
        # Refused over REST: refused over the driver too, naming the same field, and nothing loaded.
        assert rest.status_code == 400, rest.text
        assert driver_error is not None, f"REST refused {rest_csv} ({rest.text}) but the driver imported it"
        assert driver_error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "escaped_by" in rest.text and "escaped" in str(driver_error).lower()
        assert rest_rows(proj, "by_driver") == rest_rows(proj, "by_rest") == []
        return
    assert driver_error is None, f"REST imported {rest_csv} but the driver failed: {driver_error}"
    rows = rest_rows(proj, "by_driver")
    assert rows == rest_rows(proj, "by_rest")
    assert rows == (EXPECTED if escaped_by else [["1", "a,b"], ["2", 'say "hi"']])
    _, driver_rows = proj.preview("by_driver", orderBy=[X.ExportOrderBy(columnName="id")])
    assert driver_rows == rows


# -- filter values are exact over the driver protocol too (they come as strings) ---------------------

BIG = str(2 ** 53 + 1)


def test_filter_values_are_exact(proj):
    proj.create_table("n", [T(name="id", type="BIGINT"), T(name="amount", type="NUMERIC", length="38,10")])
    proj.upload("n.csv", f"id,amount\n{BIG},0.1\n{2 ** 53},0.1000000001\n1234567,12345678901234567890.5\n".encode())
    proj.run(proj.import_file("n", "", "n.csv", None, numberOfIgnoredLines=1,
                              importStrategy=X.ImportOptions.USER_DEFINED_TABLE), table_pb2.TableImportResponse)

    def ids(**filters):
        _, rows = proj.preview("n", filters=X.ExportFilters(whereFilters=[X.TableWhereFilter(**filters)]))
        return sorted(int(r[0]) for r in rows)

    assert ids(columnsName="id", operator=X.TableWhereFilter.eq, values=[BIG]) == [int(BIG)]
    assert ids(columnsName="amount", operator=X.TableWhereFilter.eq, values=["0.1"]) == [int(BIG)]
    assert ids(columnsName="amount", operator=X.TableWhereFilter.ge,
               values=["12345678901234567890.5"]) == [1234567]
    for values, mention in ((["99999999999999999999"], "99999999999999999999"), (["0.5"], "0.5"),
                            (["1e300"], "1e300")):
        column = "amount" if values == ["1e300"] else "id"
        with pytest.raises(DriverError) as e:
            proj.run(table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="n", whereFilters=[
                X.TableWhereFilter(columnsName=column, operator=X.TableWhereFilter.ne, values=values)]),
                table_pb2.DeleteTableRowsResponse)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and mention in e.value.message
    r = proj.run(table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="n", whereFilters=[
        X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.ne, values=[BIG])]),
        table_pb2.DeleteTableRowsResponse)
    assert (r.deletedRowsCount, r.tableRowsCount) == (2, 1)
