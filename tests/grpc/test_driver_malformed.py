"""Hostile and broken input never crashes the server: garbage DriverRequests (bridge and gRPC),
Anys with garbage bytes or odd type URLs, truncated gRPC frames and HTTP/2 connections cut short,
plain garbage on the gRPC port, unknown methods. After each, /health answers 200 and a real call
still works; at teardown the server must still exit 0 on SIGTERM."""

import os
import random
import socket
import struct

import grpc
import pytest
import requests

from driver_lib import (METHOD, REQUEST_TIMEOUT, TYPE_PREFIX, Driver, any_pb2, expect_error, info_pb2, project_pb2,
                        request, table_pb2)

S = grpc.StatusCode

GARBAGE = [
    b"\xff",
    b"\xff" * 64,
    b"\x0a\xff\xff\xff\xff\x0f",          # field 1, a length far beyond the end
    b"\x12\x05abc",                        # field 2, truncated
    b"\x0a\x02\x0a",                       # nested message cut in the middle of a tag
    b"\x08" + b"\x80" * 11,                # a varint longer than 10 bytes
    b"\x0b\x0c",                           # start/end group wire types
    b"\x07",                               # wire type 7 does not exist
    bytes(range(256)),
]


def still_alive(server):
    assert server.health() == 200, "GET /health failed after malformed input"
    d = Driver(server, "grpc")
    try:
        d.run(project_pb2.CreateProjectCommand(projectId=f"alive{random.randrange(10**9)}"), server.admin_key,
              response_type=project_pb2.CreateProjectResponse)
    finally:
        d.close()


def encode_len(field, payload):
    """One protobuf LEN field (wire type 2) with raw bytes, for messages Python would refuse to build."""
    out, n = bytearray([(field << 3) | 2]), len(payload)
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out) + payload


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_garbage_requests(server, transport):
    d = Driver(server, transport)
    rnd = random.Random(1234)
    payloads = GARBAGE + [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))) for _ in range(40)]
    for body in payloads:
        # Every answer is a clean error (most often "malformed DriverRequest"), never a success, never a crash.
        with pytest.raises(AssertionError) as e:
            d.execute_raw(body)
        assert getattr(e.value, "code", None) in (S.INVALID_ARGUMENT, S.UNIMPLEMENTED, S.UNAUTHENTICATED), e.value
    # An empty request decodes (all fields absent) and lacks its command.
    expect_error(lambda: d.execute_raw(b""), S.INVALID_ARGUMENT, mentions=["command"])
    d.close()
    still_alive(server)


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_any_with_garbage_and_odd_type_urls(server, transport):
    d = Driver(server, transport)
    admin = server.admin_key
    name = table_pb2.CreateTableCommand.DESCRIPTOR.full_name
    for value in GARBAGE:
        expect_error(lambda: d.execute(any_pb2.Any(type_url=TYPE_PREFIX + name, value=value), admin, "p"),
                     S.INVALID_ARGUMENT, mentions=["malformed"])
        # Garbage credentials: the command is fine, the credentials are not.
        creds = any_pb2.Any(type_url=TYPE_PREFIX + "keboola.storageDriver.credentials.GenericBackendCredentials",
                            value=value)
        expect_error(lambda: d.execute(info_pb2.ListSchemasCommand(), creds=creds), S.INVALID_ARGUMENT)
    for url in ("", "/", "type.googleapis.com/", "no-slash-at-all", "x" * 5000, "type.googleapis.com/é.中文.Command"):
        with pytest.raises(AssertionError) as e:
            d.execute(any_pb2.Any(type_url=url, value=b""), admin)
        assert getattr(e.value, "code", None) in (S.INVALID_ARGUMENT, S.UNIMPLEMENTED), e.value
    # A type URL that is not UTF-8 at all (Python's protobuf would refuse to build it): the error
    # message must still be valid UTF-8, or the client could not even decode it.
    bad_any = encode_len(1, b"type.googleapis.com/\xff\xfe\xc3(") + encode_len(2, b"")
    body = encode_len(2, bad_any)
    e = expect_error(lambda: d.execute_raw(body), S.UNIMPLEMENTED)
    assert "?" in e.message
    d.close()
    still_alive(server)


def test_unknown_grpc_method_is_unimplemented(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        for method in ("/keboola.storageDriver.service.StorageDriverService/Nope", "/other.Service/Execute", "/x"):
            stub = ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            with pytest.raises(grpc.RpcError) as e:
                stub(request(info_pb2.ListSchemasCommand()).SerializeToString(), timeout=REQUEST_TIMEOUT)
            assert e.value.code() == S.UNIMPLEMENTED
            assert "unknown method" in e.value.details()
    still_alive(server)


# ---- raw HTTP/2 ---------------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman coding."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def grpc_headers(path=METHOD):
    block = (b"\x83"  # :method POST (static table index 3)
             + b"\x86"  # :scheme http (index 6)
             + literal(":path", path) + literal(":authority", "localhost")
             + literal("content-type", "application/grpc") + literal("te", "trailers"))
    return frame(1, 0x4, 1, block)  # HEADERS, END_HEADERS, stream 1


def raw_exchange(server, data, read=True):
    with socket.create_connection(("127.0.0.1", server.grpc_port), timeout=5) as s:
        s.sendall(data)
        if read:
            s.settimeout(0.5)
            try:
                while s.recv(65536):
                    pass
            except (socket.timeout, ConnectionError):
                pass


def test_truncated_grpc_frames_and_cut_connections(server):
    msg = request(info_pb2.ListSchemasCommand(), server.admin_key, "p").SerializeToString()
    settings = frame(4, 0, 0, b"")
    cases = [
        # A gRPC message whose length prefix promises more bytes than the stream carries, then END_STREAM.
        PREFACE + settings + grpc_headers() + frame(0, 0x1, 1, b"\x00" + struct.pack(">I", 1000) + msg[:10]),
        # A length prefix cut in the middle.
        PREFACE + settings + grpc_headers() + frame(0, 0x1, 1, b"\x00\x00\x00"),
        # "Compressed" flag with no compression negotiated.
        PREFACE + settings + grpc_headers() + frame(0, 0x1, 1, b"\x01" + struct.pack(">I", len(msg)) + msg),
        # Garbage protobuf in a well-formed gRPC frame.
        PREFACE + settings + grpc_headers() + frame(0, 0x1, 1, b"\x00" + struct.pack(">I", 8) + b"\xff" * 8),
        # A DATA frame cut in the middle, connection closed.
        PREFACE + settings + grpc_headers() + frame(0, 0x1, 1, b"\x00" + struct.pack(">I", len(msg)) + msg)[:20],
        # Headers only, then the connection goes away.
        PREFACE + settings + grpc_headers(),
        # An HTTP/2 frame header that lies about its length.
        PREFACE + settings + b"\x00\xff\xff\x01\x04\x00\x00\x00\x01" + b"\x00" * 10,
        # Not HTTP/2 at all.
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        os.urandom(4096),
        b"",
    ]
    for data in cases:
        raw_exchange(server, data)
        raw_exchange(server, data, read=False)
    still_alive(server)


def test_oversized_bridge_body_is_413(server_factory):
    """The bridge shares the JSON body limit (DUCKSTORE_MAX_JSON_BYTES): larger bodies are 413.
    gRPC has its own limit (DUCKSTORE_GRPC_MAX_RECV_BYTES)."""
    server = server_factory(env={"DUCKSTORE_MAX_JSON_BYTES": "4096", "DUCKSTORE_GRPC_MAX_RECV_BYTES": "4096"})
    big = request(table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t",
                                               columns=[table_pb2.TableColumnShared(name=f"c{i:05d}")
                                                        for i in range(1000)]),
                  server.admin_key, "p").SerializeToString()
    assert len(big) > 4096
    r = requests.post(server.url + "/driver/execute", data=big, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 413
    # Over gRPC its limit applies to one message; the call fails cleanly.
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = ch.unary_unary(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            stub(big, timeout=REQUEST_TIMEOUT)
        assert e.value.code() == S.RESOURCE_EXHAUSTED
    still_alive(server)
