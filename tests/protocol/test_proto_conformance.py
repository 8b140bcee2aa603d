"""Conformance of duckstore's proto/ files with the Keboola storage driver protocol.

The reference is the markdown description in
``<repo>/../shared/protocol/keboola-storage-driver.md`` (section 1: one table per
message / enum, generated from a protoc descriptor set; section 2: the gRPC
service).  "Ours" is read from a FileDescriptorSet that protoc builds from
proto/**/*.proto.  Everything is compared both ways -- missing, extra and
different -- and each test fails with a list of every difference found:

* files: set of files, syntax, package, imports, top-level types;
* messages (nested ones included, synthetic map-entry types excluded):
  defining file, and for every field its name, number, type, label
  (singular / repeated / map / optional), oneof membership, deprecated flag
  and wire type;
* enums: defining file, value names and numbers;
* the gRPC service: name, methods, request / response types, streaming.

Run: cd <repo> && /usr/bin/python3 -m pytest -q tests/protocol
"""

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "protocol" / "keboola-storage-driver.md"
PROTO_DIR = REPO / "proto"

FDP = descriptor_pb2.FieldDescriptorProto


# --------------------------------------------------------------------------
# Model shared by both sides
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    number: int
    type: str        # "string", "uint32", full message/enum name, "map<string, string>"
    label: str       # "singular", "repeated", "map" or "optional"
    oneof: str       # oneof name, "" when not in a (real) oneof
    deprecated: bool
    wire: str        # "VARINT (0)", "I64 (1)", "LEN (2)", "I32 (5)"


@dataclass
class Message:
    file: str
    fields: dict = field(default_factory=dict)   # name -> Field


@dataclass
class Enum:
    file: str
    values: dict = field(default_factory=dict)   # name -> number


@dataclass
class ProtoFile:
    syntax: str = ""
    package: str = ""
    imports: tuple = ()
    top_level: frozenset = frozenset()


@dataclass(frozen=True)
class Method:
    input: str
    output: str
    client_streaming: bool
    server_streaming: bool


@dataclass
class Service:
    file: str
    methods: dict = field(default_factory=dict)  # name -> Method


@dataclass
class Protocol:
    files: dict = field(default_factory=dict)     # path -> ProtoFile
    messages: dict = field(default_factory=dict)  # full name -> Message
    enums: dict = field(default_factory=dict)     # full name -> Enum
    services: dict = field(default_factory=dict)  # full name -> Service


# --------------------------------------------------------------------------
# Reference side: parse the markdown
# --------------------------------------------------------------------------

class ReferenceFormatError(Exception):
    pass


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _unquote(text):
    return text.strip().strip("`").strip()


def _backticked(text):
    return re.findall(r"`([^`]+)`", text)


def parse_reference(text):
    """Parse sections 1 and 2 of the reference into a Protocol.

    Returns (protocol, stated_totals) where stated_totals is the
    (messages, enums) pair the reference announces, for a parser sanity check.
    """
    ref = Protocol()
    lines = text.splitlines()

    totals = re.search(r"\*\*(\d+) messages\*\*.*?\*\*(\d+) enums\*\*", text)
    if not totals:
        raise ReferenceFormatError("cannot find the '**N messages** ... **M enums**' totals line")
    stated = (int(totals.group(1)), int(totals.group(2)))

    # ---- section 1: per-file messages and enums ---------------------------
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("## 1."))
    except StopIteration:
        raise ReferenceFormatError("no '## 1.' section") from None
    cur_file = None
    cur_msg = None
    cur_enum = None
    for lineno, line in enumerate(lines[start + 1:], start + 2):
        # 1.x (unmerged variants), 1.y, 1.z and section 2 are not per-file tables.
        if line.startswith("### 1.") or line.startswith("## "):
            break
        m = re.match(r"^### File `([^`]+)`", line)
        if m:
            cur_file, cur_msg, cur_enum = m.group(1), None, None
            ref.files[cur_file] = ProtoFile()
            continue
        if cur_file is None:
            continue
        pf = ref.files[cur_file]
        m = re.match(r"^- (protobuf package|syntax|imports|top-level types):\s*(.*?)\s*$", line)
        if m:
            key, val = m.groups()
            if key == "protobuf package":
                pf.package = _unquote(val)
            elif key == "syntax":
                pf.syntax = val.strip()
            elif key == "imports":
                pf.imports = tuple(sorted(_backticked(val)))
            else:
                pf.top_level = frozenset(
                    re.sub(r"\s*\(enum\)$", "", t).strip() for t in _backticked(val))
            continue
        m = re.match(r"^#### message `([^`]+)`", line)
        if m:
            name = m.group(1)
            if name in ref.messages:
                raise ReferenceFormatError(f"line {lineno}: message {name} listed twice")
            cur_msg, cur_enum = Message(cur_file), None
            ref.messages[name] = cur_msg
            continue
        m = re.match(r"^\*\*enum `([^`]+)`\*\*", line)
        if m:
            name = m.group(1)
            if name in ref.enums:
                raise ReferenceFormatError(f"line {lineno}: enum {name} listed twice")
            cur_enum, cur_msg = Enum(cur_file), None
            ref.enums[name] = cur_enum
            continue
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if not cells or not re.fullmatch(r"-?\d+", cells[0]):
            continue  # header or separator row
        if cur_enum is not None:
            if len(cells) != 2:
                raise ReferenceFormatError(f"line {lineno}: enum row needs 2 cells: {line}")
            vname = _unquote(cells[1])
            if vname in cur_enum.values:
                raise ReferenceFormatError(f"line {lineno}: duplicate enum value {vname}")
            cur_enum.values[vname] = int(cells[0])
        elif cur_msg is not None:
            if len(cells) != 6:
                raise ReferenceFormatError(f"line {lineno}: field row needs 6 cells: {line}")
            number, name, ftype, label, wire, notes = cells
            oneof = re.search(r"oneof `([^`]+)`", notes)
            fname = _unquote(name)
            if fname in cur_msg.fields:
                raise ReferenceFormatError(f"line {lineno}: duplicate field {fname}")
            cur_msg.fields[fname] = Field(
                number=int(number),
                type=_unquote(ftype),
                label=label.strip(),
                oneof=oneof.group(1) if oneof else "",
                deprecated=bool(re.search(r"\bdeprecated\b", notes)),
                wire=wire.strip(),
            )
        else:
            raise ReferenceFormatError(f"line {lineno}: table row outside a message/enum: {line}")

    # ---- section 2: the gRPC service ------------------------------------
    try:
        s2 = next(i for i, l in enumerate(lines) if l.startswith("## 2."))
    except StopIteration:
        raise ReferenceFormatError("no '## 2.' (gRPC service) section") from None
    rows = {}
    for line in lines[s2 + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            cells = _cells(line)
            if len(cells) == 2:
                rows[cells[0]] = cells[1]
    try:
        svc_file, svc_pkg = _backticked(rows["file / package"])
        svc_imports = tuple(sorted(_backticked(rows["imports"])))
        (svc_name,) = _backticked(rows["service full name"])
        method_cell = rows["method"]
    except (KeyError, ValueError) as exc:
        raise ReferenceFormatError(f"service table in section 2 not understood: {exc!r}") from None
    m = re.match(r"`(\w+)`\s*\W+\s*unary, request `([^`]+)`, response `([^`]+)`", method_cell)
    if not m:
        raise ReferenceFormatError(f"service method row not understood: {method_cell}")
    if svc_file in ref.files:
        raise ReferenceFormatError(f"{svc_file} appears both in section 1 and as the service file")
    ref.files[svc_file] = ProtoFile(
        syntax="proto3",  # the reference does not state it; every protocol file is proto3
        package=svc_pkg,
        imports=svc_imports,
        top_level=frozenset([svc_name.rsplit(".", 1)[-1]]),
    )
    ref.services[svc_name] = Service(svc_file, {
        m.group(1): Method(m.group(2), m.group(3), False, False)})
    return ref, stated


# --------------------------------------------------------------------------
# Our side: descriptors from protoc
# --------------------------------------------------------------------------

_SCALAR = {
    FDP.TYPE_DOUBLE: "double", FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64", FDP.TYPE_UINT64: "uint64", FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64", FDP.TYPE_FIXED32: "fixed32", FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string", FDP.TYPE_BYTES: "bytes", FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32", FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32", FDP.TYPE_SINT64: "sint64",
}
_VARINT = {FDP.TYPE_INT32, FDP.TYPE_INT64, FDP.TYPE_UINT32, FDP.TYPE_UINT64,
           FDP.TYPE_SINT32, FDP.TYPE_SINT64, FDP.TYPE_BOOL, FDP.TYPE_ENUM}
_I64 = {FDP.TYPE_DOUBLE, FDP.TYPE_FIXED64, FDP.TYPE_SFIXED64}
_I32 = {FDP.TYPE_FLOAT, FDP.TYPE_FIXED32, FDP.TYPE_SFIXED32}


def _type_name(f):
    if f.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM, FDP.TYPE_GROUP):
        return f.type_name.lstrip(".")
    return _SCALAR[f.type]


def _wire(f, repeated):
    if f.type == FDP.TYPE_GROUP:
        return "SGROUP (3)"
    if repeated and f.type not in (FDP.TYPE_STRING, FDP.TYPE_BYTES, FDP.TYPE_MESSAGE):
        return "LEN (2)"  # proto3 packs repeated numeric fields
    if f.type in _VARINT:
        return "VARINT (0)"
    if f.type in _I64:
        return "I64 (1)"
    if f.type in _I32:
        return "I32 (5)"
    return "LEN (2)"


def compile_ours(tmp_path):
    protoc = shutil.which("protoc")
    if protoc is None:
        pytest.fail("protoc not found on PATH (package protobuf-compiler); "
                    "it is needed to compile proto/ for the conformance check")
    sources = sorted(p.relative_to(REPO).as_posix() for p in PROTO_DIR.rglob("*.proto"))
    if not sources:
        pytest.fail(f"no .proto files under {PROTO_DIR}")
    out = tmp_path / "ours.pb"
    proc = subprocess.run(
        [protoc, f"--proto_path={REPO}", "--include_imports",
         f"--descriptor_set_out={out}", *sources],
        cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("protoc failed to compile proto/:\n" + proc.stderr)
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def protocol_from_descriptors(fds):
    ours = Protocol()

    def walk_enum(e, prefix, fname):
        ours.enums[f"{prefix}.{e.name}"] = Enum(fname, {v.name: v.number for v in e.value})

    def walk_message(d, prefix, fname):
        full = f"{prefix}.{d.name}"
        nested = {n.name: n for n in d.nested_type}
        msg = Message(fname)
        for f in d.field:
            repeated = f.label == FDP.LABEL_REPEATED
            entry = None
            if f.type == FDP.TYPE_MESSAGE and repeated:
                owner, _, short = f.type_name.lstrip(".").rpartition(".")
                if owner == full and short in nested and nested[short].options.map_entry:
                    entry = nested[short]
            if entry is not None:
                k, v = sorted(entry.field, key=lambda x: x.number)
                ftype, label = f"map<{_type_name(k)}, {_type_name(v)}>", "map"
            else:
                ftype = _type_name(f)
                label = ("repeated" if repeated else
                         "optional" if f.proto3_optional else "singular")
            in_oneof = f.HasField("oneof_index") and not f.proto3_optional
            msg.fields[f.name] = Field(
                number=f.number, type=ftype, label=label,
                oneof=d.oneof_decl[f.oneof_index].name if in_oneof else "",
                deprecated=f.options.deprecated,
                wire=_wire(f, repeated),
            )
        ours.messages[full] = msg
        for n in d.nested_type:
            if not n.options.map_entry:
                walk_message(n, full, fname)
        for e in d.enum_type:
            walk_enum(e, full, fname)

    for fd in fds.file:
        if not fd.name.startswith("proto/"):
            continue  # google/protobuf/*.proto pulled in by --include_imports
        pkg = fd.package
        ours.files[fd.name] = ProtoFile(
            syntax=fd.syntax or "proto2",
            package=pkg,
            imports=tuple(sorted(fd.dependency)),
            top_level=frozenset([m.name for m in fd.message_type] +
                                [e.name for e in fd.enum_type] +
                                [s.name for s in fd.service]),
        )
        for d in fd.message_type:
            walk_message(d, pkg, fd.name)
        for e in fd.enum_type:
            walk_enum(e, pkg, fd.name)
        for s in fd.service:
            ours.services[f"{pkg}.{s.name}"] = Service(fd.name, {
                m.name: Method(m.input_type.lstrip("."), m.output_type.lstrip("."),
                               m.client_streaming, m.server_streaming)
                for m in s.method})
    return ours


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference():
    if not SHARED.is_dir():
        pytest.skip(f"shared/ directory not found at {SHARED} (expected next to the repo); "
                    "the protocol reference is not available in this checkout")
    if not REFERENCE.is_file():
        pytest.skip(f"protocol reference {REFERENCE} not found")
    try:
        return parse_reference(REFERENCE.read_text(encoding="utf-8"))
    except ReferenceFormatError as exc:
        pytest.fail(f"cannot parse {REFERENCE}: {exc}")


@pytest.fixture(scope="module")
def ref(reference):
    return reference[0]


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    return protocol_from_descriptors(compile_ours(tmp_path_factory.mktemp("descriptors")))


# --------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------

def _compare_keys(kind, ref_map, our_map, diffs):
    for name in sorted(set(ref_map) - set(our_map)):
        diffs.append(f"missing {kind} {name} (in reference, not in proto/)")
    for name in sorted(set(our_map) - set(ref_map)):
        diffs.append(f"extra {kind} {name} (in proto/, not in reference)")
    return sorted(set(ref_map) & set(our_map))


def _report(title, diffs):
    if diffs:
        pytest.fail(f"{title}: {len(diffs)} difference(s) between proto/ and "
                    f"{REFERENCE.name}:\n  - " + "\n  - ".join(diffs), pytrace=False)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def test_reference_parsed_completely(reference):
    """Guards the parser: it must find as many types as the reference announces."""
    ref, (n_msgs, n_enums) = reference
    diffs = []
    if len(ref.messages) != n_msgs:
        diffs.append(f"reference announces {n_msgs} messages, parser found {len(ref.messages)}")
    if len(ref.enums) != n_enums:
        diffs.append(f"reference announces {n_enums} enums, parser found {len(ref.enums)}")
    for name, msg in ref.messages.items():
        if not ref.files[msg.file].package or not name.startswith(ref.files[msg.file].package + "."):
            diffs.append(f"message {name} is not inside the package of {msg.file}")
    _report("reference parsing", diffs)


def test_files(ref, ours):
    diffs = []
    for path in _compare_keys("file", ref.files, ours.files, diffs):
        r, o = ref.files[path], ours.files[path]
        for attr in ("syntax", "package", "imports", "top_level"):
            rv, ov = getattr(r, attr), getattr(o, attr)
            if rv != ov:
                if isinstance(rv, (tuple, frozenset)):
                    rv, ov = sorted(rv), sorted(ov)
                    extra = f" (missing {sorted(set(rv) - set(ov))}, extra {sorted(set(ov) - set(rv))})"
                else:
                    extra = ""
                diffs.append(f"file {path}: {attr}: reference {rv!r}, ours {ov!r}{extra}")
    _report("files", diffs)


def test_messages_and_fields(ref, ours):
    diffs = []
    for name in _compare_keys("message", ref.messages, ours.messages, diffs):
        r, o = ref.messages[name], ours.messages[name]
        if r.file != o.file:
            diffs.append(f"message {name}: defined in {o.file}, reference says {r.file}")
        for fname in sorted(set(r.fields) - set(o.fields)):
            f = r.fields[fname]
            diffs.append(f"message {name}: missing field {fname} = {f.number} ({f.label} {f.type})")
        for fname in sorted(set(o.fields) - set(r.fields)):
            f = o.fields[fname]
            diffs.append(f"message {name}: extra field {fname} = {f.number} ({f.label} {f.type})")
        for fname in sorted(set(r.fields) & set(o.fields)):
            rf, of = r.fields[fname], o.fields[fname]
            for attr in ("number", "type", "label", "oneof", "deprecated", "wire"):
                rv, ov = getattr(rf, attr), getattr(of, attr)
                if rv != ov:
                    diffs.append(f"message {name} field {fname}: {attr}: "
                                 f"reference {rv!r}, ours {ov!r}")
        numbers = {}
        for fname, f in o.fields.items():
            numbers.setdefault(f.number, []).append(fname)
        for num, names in sorted(numbers.items()):
            if len(names) > 1:
                diffs.append(f"message {name}: number {num} used by {sorted(names)}")
    _report("messages/fields", diffs)


def test_enums(ref, ours):
    diffs = []
    for name in _compare_keys("enum", ref.enums, ours.enums, diffs):
        r, o = ref.enums[name], ours.enums[name]
        if r.file != o.file:
            diffs.append(f"enum {name}: defined in {o.file}, reference says {r.file}")
        for v in sorted(set(r.values) - set(o.values)):
            diffs.append(f"enum {name}: missing value {v} = {r.values[v]}")
        for v in sorted(set(o.values) - set(r.values)):
            diffs.append(f"enum {name}: extra value {v} = {o.values[v]}")
        for v in sorted(set(r.values) & set(o.values)):
            if r.values[v] != o.values[v]:
                diffs.append(f"enum {name} value {v}: number: reference {r.values[v]}, "
                             f"ours {o.values[v]}")
    _report("enums", diffs)


def test_service(ref, ours):
    diffs = []
    for name in _compare_keys("service", ref.services, ours.services, diffs):
        r, o = ref.services[name], ours.services[name]
        if r.file != o.file:
            diffs.append(f"service {name}: defined in {o.file}, reference says {r.file}")
        for mname in _compare_keys(f"method of {name}:", r.methods, o.methods, diffs):
            rm, om = r.methods[mname], o.methods[mname]
            for attr in ("input", "output", "client_streaming", "server_streaming"):
                if getattr(rm, attr) != getattr(om, attr):
                    diffs.append(f"service {name} method {mname}: {attr}: "
                                 f"reference {getattr(rm, attr)!r}, ours {getattr(om, attr)!r}")
    _report("service", diffs)
