"""Writes seed inputs for the fuzz harnesses into <dir>/<harness>/ (default build-fuzz/seeds).

    /usr/bin/python3 tests/fuzz/make_seeds.py [DIR]

Hand-written seeds for the value parsers (identifiers, file keys, numbers, times, CSV options and
headers), plus seeds derived from recorded requests when record_seeds.py has filled DIR/rest and
DIR/driver: their JSON bodies for fuzz_json, and each DriverRequest (and its command) for
fuzz_pbcheck. scripts/fuzz.sh's merge then keeps only the seeds that add coverage.
"""

import gzip
import hashlib
import sys
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "build-fuzz/seeds")


def save(h, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / h
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


for s in ["p", "my-project_1", "in.c-main", "out.c-b", "c-b", "in", "sys", "tbl", "a\"b", "it's", "x" * 65,
          "folder/sub/file.csv", "a//b", "../etc/passwd", "./a", "a/./b", "in/f.csv", "out/x", "loop/x", "a/f.csv",
          "é", "\u00e9t\u00e9", "_timestamp", "", "/abs", "a\\b"]:
    save("ident", s)

for ty, v in [("INTEGER", "42"), ("BIGINT", "-9223372036854775808"), ("HUGEINT", "1e38"),
              ("DECIMAL(12,2)", "0.10"), ("DECIMAL(38,37)", "-1.5e-30"), ("DOUBLE", "1e308"),
              ("numeric(4, 2)", "99.99"), ("UBIGINT", "18446744073709551615"), ("TINYINT", "-0"),
              ("FLOAT", "NaN"), ("SMALLINT", "1.50e2"), ("int", "0x10"), ("DECIMAL", "  7 ")]:
    save("numlit", f"{ty}\n{v}")

for s in ["1767225600", "-1", "+0", "2026-01-31", "2026-02-29", "2024-02-29T23:59:59.123456Z",
          "2026-01-01 00:00+01:00", "2026-12-31T24:00:00", "2026-01-01T10:00:00-0530", "99999999999999999999",
          "decimal(38, 38)", "VARCHAR(255)", "timestamp with time zone", "double precision", "REAL", "numeric(0)"]:
    save("types", s)

csv_files = [b"id,name\n1,a\n", b"\xef\xbb\xbf\"a\"\"b\",c\n", b"skip\n\"x\",\"y\"\"z\",w\n", b"a;b\r\nc;d\r\n",
             b"\"unterminated,x\n", b"a\\,b,c\n"]
for opts in [b",\"\x00\x00", b";\"\x00\x00", b",\"\x00\x01", b"\t\x00\\\x00", b",\x00\x00\x00"]:
    for f in csv_files:
        save("csv", opts + f)
save("csv", b",\"\x00\x00" + gzip.compress(b"id,name,amount\n1,a,2.5\n"))

rest = OUT / "rest"
if rest.is_dir():
    for f in rest.iterdir():
        data = f.read_bytes()
        body = data.split(b"\n\n", 1)[1] if b"\n\n" in data else b""
        if body[:1] in (b"{", b"["):
            save("json", body)
for s in ['{"a": 9007199254740993, "b": [0.1, -0, 1e400, 99999999999999999999]}', '{"name": "x", "name": "y"}',
          '{"limit": "5", "columns": ["a", 1]}', '[1, 2]', '']:
    save("json", s)

driver = OUT / "driver"
if driver.is_dir():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build" / "gen" / "python"))
    from proto import common_pb2
    for f in driver.iterdir():
        data = f.read_bytes()
        save("pbcheck", b"\x00" + data)
        try:
            req = common_pb2.DriverRequest.FromString(data)
            save("pbcheck", b"\x01" + req.credentials.value)
            # The first byte picks the checker's message type (fuzz_pbcheck.c); 13 is Any.
            save("pbcheck", b"\x0d" + req.command.SerializeToString())
        except Exception:
            pass
