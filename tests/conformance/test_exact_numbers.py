"""Conformance: JSON numbers in filters select the same rows on every backend, exactly as written
(2^53+1 next to 2^53, 0.1 next to 0.1000000001, a 20-digit decimal, 1e300, -0), and an integer the
column's type cannot hold is a 400 naming it. Bodies are raw JSON text, so the literals are exact."""

import pytest

from e2e_lib import expect
from helpers import expect_400

BIG = 2 ** 53 + 1
DEC20 = "12345678901234567890.1234567891"
COLS = [{"name": "id", "type": "BIGINT", "nullable": False}, {"name": "amount", "type": "DECIMAL(38,10)"},
        {"name": "ratio", "type": "DOUBLE"}, {"name": "label", "type": "VARCHAR"}]
HDR = ["id", "amount", "ratio", "label"]
ROWS = [["1234567", "0.1", "0.1", "1234567"], ["1234570", "0.1000000001", "1e300", "x"],
        [str(BIG), DEC20, "0", str(BIG)], [str(BIG - 1), "5", "2.5", "y"]]
ALL = sorted(int(r[0]) for r in ROWS)


def raw(proj, method, path, text):
    return proj.api.request(method, path, data=text, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("flt,selected", [
    ('{"column": "id", "operator": "ne", "values": 1234567}', [1234570, BIG - 1, BIG]),
    (f'{{"column": "id", "operator": "eq", "values": {BIG}}}', [BIG]),
    ('{"column": "amount", "operator": "eq", "values": 0.1}', [1234567]),
    (f'{{"column": "amount", "operator": "ge", "values": {DEC20}}}', [BIG]),
    ('{"column": "ratio", "operator": "eq", "values": 1e300}', [1234570]),
    ('{"column": "ratio", "operator": "eq", "values": -0}', [BIG]),
    (f'{{"column": "label", "operator": "eq", "values": [{BIG}, 1234567]}}', [1234567, BIG]),
])
def test_number_filters_are_exact(proj, flt, selected):
    proj.create_table("n", COLS, primary_key=["id"])
    proj.load("n", HDR, ROWS)
    res = expect(raw(proj, "POST", proj.tpath("n") + "/export", f'{{"where_filters": [{flt}], "file_name": "e.csv"}}'),
                 201)
    lines = proj.download(res["file_id"]).decode().splitlines()[1:]
    assert sorted(int(line.split(",")[0].strip('"')) for line in lines) == selected
    r = expect(raw(proj, "DELETE", proj.tpath("n") + "/rows", f'{{"where_filters": [{flt}]}}'), 200)
    assert r["deleted_rows"] == len(selected)
    assert sorted(int(row[0]) for row in proj.rows("n")) == sorted(set(ALL) - set(selected))


def test_integer_beyond_the_column_type_is_refused(proj):
    proj.create_table("n", COLS, primary_key=["id"])
    proj.load("n", HDR, ROWS)
    expect_400(raw(proj, "DELETE", proj.tpath("n") + "/rows",
                   '{"where_filters": [{"column": "id", "operator": "ne", "values": 99999999999999999999}]}'),
               mentions=["99999999999999999999"])
    assert len(proj.rows("n")) == len(ROWS)
