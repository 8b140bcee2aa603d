"""JSON numbers in filters reach SQL exactly as written: integers of any size, decimals of any
length, 1e300, -0. They are compared in the column's type (BIGINT, DECIMAL(38,10), DOUBLE, VARCHAR)
for delete rows, export filters and preview filters; a value the column's type cannot hold is a 400
naming the value, and changes nothing. Bodies are sent as raw JSON text, so the literals are exactly
the ones below (a JSON library on the client side would not round them either way)."""

import pytest

from data_helpers import csv_text, expect_4xx, proj  # noqa: F401 (fixture)
from e2e_lib import expect

BIG = 2 ** 53 + 1  # 9007199254740993: a double cannot hold it, its neighbour 2^53 is a different row
DEC20 = "12345678901234567890.1234567891"  # 20 integer digits: far beyond a double
COLUMNS = [{"name": "id", "type": "BIGINT"}, {"name": "amount", "type": "DECIMAL(38,10)"},
           {"name": "ratio", "type": "DOUBLE"}, {"name": "label"}]
ROWS = [["1234567", "0.1", "0.1", "1234567"],
        ["1234570", "0.1000000001", "1e300", "1.23457e+06"],
        [str(BIG), DEC20, "-0", str(BIG)],
        [str(BIG - 1), "12345678901234567890.123456789", "2.5", "x"],
        ["0", "0", "0.30000000000000004", "0"]]


@pytest.fixture
def nums(proj):  # noqa: F811
    proj.create_table("n", COLUMNS)
    proj.load_csv("n", csv_text(ROWS, header=["id", "amount", "ratio", "label"]))
    return proj


def raw(proj, method, path, text):
    return proj.api.request(method, path, data=text, headers={"Content-Type": "application/json"})


def ids_of(rows):
    return sorted(int(r[0]) for r in rows)


def remaining(proj):
    return ids_of(proj.rows("n"))


ALL = sorted(int(r[0]) for r in ROWS)

# (filter as raw JSON, the ids it selects)
FILTERS = [
    ('{"column": "id", "operator": "ne", "values": 1234567}', [i for i in ALL if i != 1234567]),
    ('{"column": "id", "operator": "eq", "values": 1234567}', [1234567]),
    (f'{{"column": "id", "operator": "eq", "values": [{BIG}]}}', [BIG]),
    (f'{{"column": "id", "operator": "ge", "values": {BIG}}}', [BIG]),
    ('{"column": "id", "operator": "eq", "values": -0}', [0]),
    ('{"column": "amount", "operator": "eq", "values": 0.1}', [1234567]),
    ('{"column": "amount", "operator": "gt", "values": 0.1}', [1234570, BIG - 1, BIG]),
    (f'{{"column": "amount", "operator": "eq", "values": [{DEC20}]}}', [BIG]),
    (f'{{"column": "amount", "operator": "lt", "values": {DEC20}}}', [0, 1234567, 1234570, BIG - 1]),
    ('{"column": "amount", "operator": "eq", "values": 12345678901234567890.1234567890}', [BIG - 1]),
    ('{"column": "ratio", "operator": "eq", "values": 1e300}', [1234570]),
    ('{"column": "ratio", "operator": "eq", "values": -0}', [BIG]),
    ('{"column": "ratio", "operator": "eq", "values": 0.1}', [1234567]),
    ('{"column": "ratio", "operator": "eq", "values": 0.30000000000000004}', [0]),
    ('{"column": "label", "operator": "eq", "values": 1234567}', [1234567]),
    ('{"column": "label", "operator": "eq", "values": 1.23457e+06}', [1234570]),
    (f'{{"column": "label", "operator": "eq", "values": [{BIG}, 0]}}', [0, BIG]),
]


@pytest.mark.parametrize("flt,selected", FILTERS)
def test_delete_rows_filter_is_exact(nums, flt, selected):
    r = expect(raw(nums, "DELETE", nums.tpath("n") + "/rows", f'{{"where_filters": [{flt}]}}'), 200)
    assert r["deleted_rows"] == len(selected)
    assert remaining(nums) == sorted(set(ALL) - set(selected))


@pytest.mark.parametrize("flt,selected", FILTERS)
def test_export_filter_is_exact(nums, flt, selected):
    body = f'{{"where_filters": [{flt}], "file_name": "exports/n.csv"}}'
    res = expect(raw(nums, "POST", nums.tpath("n") + "/export", body), 201)
    rows = [line for line in nums.download(res["file_id"]).decode().splitlines()[1:]]
    assert sorted(int(line.split(",")[0].strip('"')) for line in rows) == selected


@pytest.mark.parametrize("where,selected", [
    (f"id:eq:{BIG}", [BIG]),
    ("id:ne:1234567", [i for i in ALL if i != 1234567]),
    (f"amount:eq:{DEC20}", [BIG]),
    ("amount:eq:0.1", [1234567]),
    ("ratio:eq:1e300", [1234570]),
    ("ratio:eq:-0", [BIG]),
    (f"label:eq:{BIG}", [BIG]),
])
def test_preview_filter_is_exact(nums, where, selected):
    assert ids_of(nums.preview("n", where=where, limit=1000)["rows"]) == selected


@pytest.mark.parametrize("flt,mentions", [
    ('{"column": "id", "operator": "ne", "values": 99999999999999999999}', ["99999999999999999999", "BIGINT"]),
    ('{"column": "id", "operator": "eq", "values": [1, 9223372036854775808]}', ["9223372036854775808"]),
    ('{"column": "id", "operator": "ne", "values": 0.5}', ["0.5", "whole number"]),
    ('{"column": "id", "operator": "ne", "values": "12abc"}', ["12abc", "not a number"]),
    ('{"column": "amount", "operator": "ne", "values": 0.12345678901}', ["0.12345678901", "DECIMAL(38,10)"]),
    ('{"column": "amount", "operator": "ne", "values": 1e300}', ["1e300", "DECIMAL(38,10)"]),
    ('{"column": "ratio", "operator": "ne", "values": 1e400}', ["1e400", "DOUBLE"]),
    ('{"column": "label", "operator": "ne", "values": [true]}', ["values"]),
])
def test_values_the_column_cannot_hold_are_refused(nums, flt, mentions):
    before = nums.rows("n")
    expect_4xx(raw(nums, "DELETE", nums.tpath("n") + "/rows", f'{{"where_filters": [{flt}]}}'), mentions=mentions)
    expect_4xx(raw(nums, "POST", nums.tpath("n") + "/export", f'{{"where_filters": [{flt}]}}'), mentions=mentions)
    assert nums.rows("n") == before


def test_preview_refuses_values_the_column_cannot_hold(nums):
    expect_4xx(nums.preview_raw("n", where="id:ne:99999999999999999999"), mentions=["99999999999999999999"])
    expect_4xx(nums.preview_raw("n", where="amount:eq:0.00000000001"), mentions=["0.00000000001"])


def test_integer_fields_beyond_int64_are_refused(nums):
    expect_4xx(raw(nums, "POST", nums.tpath("n") + "/export", '{"limit": 99999999999999999999}'),
               mentions=["limit", "99999999999999999999"])
    expect_4xx(raw(nums, "DELETE", nums.tpath("n") + "/rows", '{"changed_since": 99999999999999999999}'),
               mentions=["changed_since", "99999999999999999999"])
    assert remaining(nums) == ALL
