"""Uploads that are written behind: the server hashes and writes one batch of the body while it
reads the next (src/rest/server.c, DESIGN). These bodies are several batches long, so every batch
after the first is written by a worker while the connection goes on reading; the tests check the
bytes, the checksum, errors in the middle of the body, clients that leave, and connection reuse.
"""

import hashlib
import os
import socket
import struct
import threading

import requests

from e2e_lib import REQUEST_TIMEOUT, create_project, expect, expect_error, list_items
from test_files import RAW, call, download, objects_on_disk, proj, staging_on_disk, upload, wait_for  # noqa: F401

MB = 1024 * 1024


def pattern(size):
    """size random bytes: a batch stored twice, lost or out of order changes the file's SHA-256."""
    return os.urandom(size)


def test_long_raw_upload_keeps_every_byte_in_order(server, proj):
    data = pattern(12 * MB + 12345)
    f = upload(proj, "p", "long.bin", data)
    assert f["size"] == len(data)
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert download(proj, "p", f["id"]).content == data
    assert staging_on_disk(server, "p") == []


def test_long_chunked_multipart_upload(server, proj):
    # A multipart body is parsed by the worker that writes each batch; a generator body makes
    # requests send it chunked, in pieces that end anywhere.
    data = pattern(6 * MB + 777) + b"\r\n--boundary\r\n" * 1000
    boundary = "xYzBoundary42"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()

    def pieces():
        for i in range(0, len(body), 100_003):
            yield body[i:i + 100_003]

    r = call(proj, "POST", "/projects/p/files", params={"name": "mp.bin"}, data=pieces(),
             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    f = expect(r, 201)
    assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert download(proj, "p", f["id"]).content == data


def test_limit_crossed_in_a_later_batch_is_413_and_stores_nothing(server_factory):
    server = server_factory(env={"DUCKSTORE_MAX_UPLOAD_BYTES": str(3 * MB)})
    admin = server.api()
    create_project(admin, "p")
    # Chunked: no Content-Length to refuse up front, so the limit is found while batches are written.
    r = call(admin, "POST", "/projects/p/files", params={"name": "big.bin"},
             data=(b"z" * MB for _ in range(8)), headers=RAW)
    expect_error(r, 413, "payload_too_large", mentions=["DUCKSTORE_MAX_UPLOAD_BYTES"])
    assert list_items(admin, "/projects/p/files") == []
    assert staging_on_disk(server, "p") == []
    assert objects_on_disk(server, "p") == []
    data = pattern(3 * MB)
    assert upload(admin, "p", "fits.bin", data)["sha256"] == hashlib.sha256(data).hexdigest()


def test_clients_leaving_mid_body_leave_nothing_and_the_server_serves_on(server, proj):
    head = (b"POST /projects/p/files?name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + proj.key.encode() + b"\r\nContent-Type: application/octet-stream\r\nContent-Length: "
            + str(64 * MB).encode() + b"\r\n\r\n")
    chunk = b"c" * MB
    # Leaving at different points, abruptly (a reset), catches batches at every stage of their write.
    for i in range(12):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(head)
        for _ in range(2 + i % 5):
            s.sendall(chunk)
        s.close()
    wait_for(lambda: staging_on_disk(server, "p") == [], "the aborted uploads' staging files to go", 10)
    assert list_items(proj, "/projects/p/files") == []
    assert objects_on_disk(server, "p") == []
    data = pattern(4 * MB)
    f = upload(proj, "p", "cut.bin", data)
    assert download(proj, "p", f["id"]).content == data


def test_concurrent_long_uploads_and_a_reused_connection(server, proj):
    datas = {f"c{i}.bin": pattern(5 * MB + i) for i in range(4)}
    results = {}

    def one(name):
        # Each thread its own session: one connection per upload, all writing behind at once.
        with requests.Session() as s:
            headers = dict(RAW)
            headers.update(proj.auth_headers(proj.key, "bearer"))
            r = s.post(server.url + "/projects/p/files", params={"name": name}, data=datas[name],
                       headers=headers, timeout=REQUEST_TIMEOUT)
            results[name] = (r.status_code, r.json())

    threads = [threading.Thread(target=one, args=(n,)) for n in datas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for name, data in datas.items():
        status, f = results[name]
        assert status == 201, f
        assert f["sha256"] == hashlib.sha256(data).hexdigest()
        assert download(proj, "p", f["id"]).content == data

    # Two long uploads and a JSON request, one after another on one keep-alive connection.
    with requests.Session() as s:
        headers = dict(RAW)
        headers.update(proj.auth_headers(proj.key, "bearer"))
        for name in ("k1.bin", "k2.bin"):
            data = pattern(3 * MB + 5)
            r = s.post(server.url + "/projects/p/files", params={"name": name}, data=data, headers=headers,
                       timeout=REQUEST_TIMEOUT)
            assert r.status_code == 201, r.text
            assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
        r = s.get(server.url + "/projects/p/files", headers=headers, timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200
        assert sorted(f["name"] for f in r.json()["items"]) == sorted(list(datas) + ["k1.bin", "k2.bin"])
    assert staging_on_disk(server, "p") == []
