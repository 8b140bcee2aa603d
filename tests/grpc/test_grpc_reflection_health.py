"""Server reflection (grpc.reflection.v1 and v1alpha) and the standard health protocol
(grpc.health.v1), exercised the way generic gRPC tools use them.

The client here has no compiled-in knowledge of duckstore's protos: reflection_client.py compiles
only Debian's grpc-proto health and reflection files at test time, and every duckstore message is
built from the FileDescriptorProtos the server returns, into a fresh DescriptorPool, from JSON
(with "@type" for the Any fields) as `grpcurl -d` does.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
import requests
from google.protobuf import descriptor_pb2, json_format

from e2e_lib import wait_for
from reflection_client import ReflectionClient, ReflectionError, standard_modules

SERVICE = "keboola.storageDriver.service.StorageDriverService"
EXECUTE = f"/{SERVICE}/Execute"
SERVED = sorted([SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                 "grpc.reflection.v1alpha.ServerReflection"])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = "keboola.storageDriver.command."


def proto_messages():
    """Every message (full name) declared in the repository's proto/ files, read from the files themselves."""
    import re
    names = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "proto")):
        for f in files:
            if not f.endswith(".proto"):
                continue
            text = open(os.path.join(dirpath, f)).read()
            pkg = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
            # Top-level messages only: a line starting with "message" at column 0.
            names += [f"{pkg}.{m}" for m in re.findall(r"^message\s+(\w+)", text, re.M)]
    return sorted(names)


@pytest.fixture(params=["v1", "v1alpha"])
def refl(request, server):
    c = ReflectionClient(server.grpc_target, request.param)
    yield c
    c.close()


def test_list_names_every_served_service(refl):
    assert refl.list_services() == SERVED


def test_describe_service_shows_execute_with_its_message_types(refl):
    names = refl.file_containing(SERVICE)
    assert names[0] == "proto/service.proto"
    svc = refl.service(SERVICE)
    assert [m.name for m in svc.methods] == ["Execute"]
    ex = svc.methods_by_name["Execute"]
    assert ex.input_type.full_name == "keboola.storageDriver.command.common.DriverRequest"
    assert ex.output_type.full_name == "keboola.storageDriver.command.common.DriverResponse"
    # The method itself is a symbol too (grpcurl describe <service>.<method>).
    assert refl.file_containing(f"{SERVICE}.Execute")[0] == "proto/service.proto"


def test_every_message_of_the_proto_files_is_reflected(refl):
    """Any message a DriverRequest's Any may carry can be resolved by name, with its whole file."""
    messages = proto_messages()
    assert len(messages) > 80, messages  # every command, response and shared message of the protocol
    for name in messages:
        refl.message_class(name)  # raises when the server does not know it
    desc = refl.pool.FindMessageTypeByName(PKG + "table.TableImportFromFileCommand")
    assert desc.fields_by_name["filePath"].message_type.full_name == PKG + "table.ImportExportShared.FilePath"
    # Nested types resolve as symbols of their own.
    assert refl.file_containing(PKG + "table.ImportExportShared.ImportOptions")[0] == "proto/table.proto"


def test_file_by_filename_returns_the_file_and_its_dependencies(refl):
    names = refl.file_by_name("proto/table.proto")
    assert names[0] == "proto/table.proto"
    fd = refl.files["proto/table.proto"]
    assert fd.package == "keboola.storageDriver.command.table"
    # Transitive dependencies come along, each once.
    assert len(names) == len(set(names))
    for name in names:
        assert set(refl.files[name].dependency) <= set(names), (name, refl.files[name].dependency, names)


def test_descriptors_match_what_protoc_makes_of_the_repository_files(refl, tmp_path):
    """Reflection serves exactly the .proto files of the source tree, not a hand-written copy."""
    out = tmp_path / "set.pb"
    subprocess.run(["protoc", "--proto_path=.", "--proto_path=/usr/include", "--include_imports",
                    f"--descriptor_set_out={out}", "proto/table.proto"], cwd=ROOT, check=True)
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    expected = {f.name: f for f in fds.file}
    refl.file_by_name("proto/table.proto")
    for name, fd in expected.items():
        assert refl.files[name] == fd, f"{name} differs from protoc's descriptor of the source file"


def test_unknown_names_are_not_found_and_the_stream_goes_on(refl):
    R = refl.refl.ServerReflectionRequest
    answers = refl.ask(R(file_containing_symbol="no.such.Symbol"), R(file_by_filename="proto/nope.proto"),
                       R(file_containing_extension=refl.refl.ExtensionRequest(
                           containing_type=PKG + "common.DriverRequest", extension_number=100)),
                       R(all_extension_numbers_of_type="no.such.Type"),
                       R(all_extension_numbers_of_type=PKG + "common.DriverRequest"),
                       R(list_services=""))
    assert len(answers) == 6
    for a, what in zip(answers[:4], ["no.such.Symbol", "proto/nope.proto", "100", "no.such.Type"]):
        assert a.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0], a
        assert what in a.error_response.error_message, a
    assert answers[4].all_extension_numbers_response.base_type_name == PKG + "common.DriverRequest"
    assert list(answers[4].all_extension_numbers_response.extension_number) == []
    assert sorted(s.name for s in answers[5].list_services_response.service) == SERVED
    # Each answer repeats the request it answers.
    assert answers[0].original_request.file_containing_symbol == "no.such.Symbol"
    with pytest.raises(ReflectionError) as e:
        refl.file_containing("no.such.Symbol")
    assert e.value.code == grpc.StatusCode.NOT_FOUND.value[0]


def test_garbage_on_the_reflection_stream_is_invalid_argument(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        call = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            list(call(iter([b"\xff\xff\xff"]), timeout=10))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_create_project_from_json_through_reflected_descriptors(refl, server):
    """The operator's flow: describe, then a JSON DriverRequest with @type Anys, executed."""
    refl.message_class(PKG + "project.CreateProjectCommand")
    refl.message_class("keboola.storageDriver.credentials.GenericBackendCredentials")
    svc = refl.service(SERVICE)
    ex = svc.methods_by_name["Execute"]
    body = {
        "credentials": {"@type": "type.googleapis.com/keboola.storageDriver.credentials.GenericBackendCredentials",
                        "secret": server.admin_key},
        "command": {"@type": f"type.googleapis.com/{PKG}project.CreateProjectCommand", "projectId": "fromjson"},
    }
    req = refl.from_json(ex.input_type.full_name, json.dumps(body))
    Resp = refl.message_class(ex.output_type.full_name)
    resp, call = refl.unary(EXECUTE, req, Resp, timeout=30)
    out = json.loads(json_format.MessageToJson(resp, descriptor_pool=refl.pool))
    r = out["commandResponse"]
    assert r["@type"] == f"type.googleapis.com/{PKG}project.CreateProjectResponse"
    assert r["projectUserName"] == "fromjson" and r["projectDatabaseName"] == "fromjson"
    assert r["projectPassword"].startswith("fromjson")
    # The project exists for REST too, and its new key works there.
    got = requests.get(f"{server.url}/projects/fromjson", headers={"Authorization": f"Bearer {r['projectPassword']}"},
                       timeout=10)
    assert got.status_code == 200, got.text

    # A second command built the same way: a bucket in that project, with the key in metadata.
    refl.message_class(PKG + "bucket.CreateBucketCommand")
    body = {"credentials": {"@type": "type.googleapis.com/keboola.storageDriver.credentials.GenericBackendCredentials",
                            "host": "fromjson"},
            "command": {"@type": f"type.googleapis.com/{PKG}bucket.CreateBucketCommand", "bucketId": "in.c-json"}}
    resp, _ = refl.unary(EXECUTE, refl.from_json(ex.input_type.full_name, json.dumps(body)), Resp, timeout=30,
                         metadata=[("authorization", f"Bearer {r['projectPassword']}")])
    out = json.loads(json_format.MessageToJson(resp, descriptor_pool=refl.pool))
    assert out["commandResponse"]["createBucketObjectName"] == "in.c-json"


# ---- health ----------------------------------------------------------------------------------------


def health_calls(channel):
    h = standard_modules()["health"]
    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=h.HealthCheckResponse.FromString)
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=h.HealthCheckResponse.FromString)
    return h, check, watch


def test_health_check_serving_for_the_server_and_every_service(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        h, check, _ = health_calls(ch)
        for name in ["", *SERVED]:
            assert check(h.HealthCheckRequest(service=name), timeout=10).status == h.HealthCheckResponse.SERVING, name
        with pytest.raises(grpc.RpcError) as e:
            check(h.HealthCheckRequest(service="no.such.Service"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no.such.Service" in e.value.details()
    assert requests.get(server.url + "/ready", timeout=10).status_code == 200


def test_health_follows_ready_and_watch_sends_each_change(server):
    """Taking the project directory away makes /ready 503: Check says NOT_SERVING and a Watch
    stream receives NOT_SERVING, then SERVING again once the directory is back."""
    with grpc.insecure_channel(server.grpc_target) as ch:
        h, check, watch = health_calls(ch)
        stream = watch(h.HealthCheckRequest(service=SERVICE), timeout=60)
        seen = []

        def read():
            try:
                for m in stream:
                    seen.append(m.status)
            except grpc.RpcError:
                pass

        t = threading.Thread(target=read, daemon=True)
        t.start()
        wait_for(lambda: seen == [h.HealthCheckResponse.SERVING], "first Watch message", timeout=10.0)

        away = server.project_dir.with_name("duckdb.away")
        server.project_dir.rename(away)
        try:
            assert requests.get(server.url + "/ready", timeout=10).status_code == 503
            assert check(h.HealthCheckRequest(service=""), timeout=10).status == h.HealthCheckResponse.NOT_SERVING
            assert check(h.HealthCheckRequest(service=SERVICE),
                         timeout=10).status == h.HealthCheckResponse.NOT_SERVING
            wait_for(lambda: h.HealthCheckResponse.NOT_SERVING in seen, "NOT_SERVING on the Watch stream", timeout=10.0)
        finally:
            away.rename(server.project_dir)
        assert requests.get(server.url + "/ready", timeout=10).status_code == 200
        assert check(h.HealthCheckRequest(service=""), timeout=10).status == h.HealthCheckResponse.SERVING
        wait_for(lambda: seen[-1:] == [h.HealthCheckResponse.SERVING] and len(seen) == 3, "SERVING again", timeout=10.0)
        assert seen == [h.HealthCheckResponse.SERVING, h.HealthCheckResponse.NOT_SERVING,
                        h.HealthCheckResponse.SERVING]
        stream.cancel()
        t.join(timeout=10)


def test_watch_of_an_unknown_service_says_so_and_shutdown_ends_watches(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        h, _, watch = health_calls(ch)
        unknown = watch(h.HealthCheckRequest(service="no.such.Service"), timeout=60)
        assert next(unknown).status == h.HealthCheckResponse.SERVICE_UNKNOWN
        known = watch(h.HealthCheckRequest(service=""), timeout=60)
        assert next(known).status == h.HealthCheckResponse.SERVING
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        # Shutdown: NOT_SERVING, then the stream ends (it does not hold the shutdown up).
        assert next(known).status == h.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as e:
            next(known)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        stopper.join(timeout=30)
        assert not stopper.is_alive()
        assert server.exit_codes[-1] == 0
        # The streams ended by themselves (UNAVAILABLE, logged 503; a cancelled call is logged 499), so shutdown
        # had no call to cancel. It may still wait for this client to acknowledge its GOAWAY: the Python client
        # polls an idle connection only every few seconds.
        log = server.log_text()
        watches = [json.loads(line) for line in log.splitlines() if "Health/Watch" in line]
        assert [w["status"] for w in watches] == [503, 503], log
        assert "still open after" not in log


def test_a_client_that_never_answers_holds_shutdown_up_20_s_at_most(server):
    """A gRPC client process that is stopped (or cut off) never acknowledges the server's GOAWAY. SIGTERM
    then waits for it at most gRPC's own limit (20 s from the shutdown's start), cancels nothing (no call
    is open) and exits 0."""
    here = os.path.dirname(os.path.abspath(__file__))
    client = subprocess.Popen([sys.executable, "-c", f"""
import sys, time, grpc
sys.path[:0] = {[here, os.path.join(ROOT, "tests", "e2e")]!r}
from test_grpc_reflection_health import health_calls
ch = grpc.insecure_channel("{server.grpc_target}")
h, check, _ = health_calls(ch)
print(check(h.HealthCheckRequest(service=""), timeout=30).status, flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "1"  # SERVING, over a connection that stays open
        os.kill(client.pid, signal.SIGSTOP)
        proc, server.proc = server.proc, None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        took = time.monotonic() - t0
    finally:
        client.kill()
        client.wait()
    log = server.log_text()
    assert rc == 0, log
    assert took < 25, f"SIGTERM took {took:.1f}s with a stopped client"
    assert "waiting for clients to acknowledge the shutdown" in log
    assert "still open after" not in log
    assert "shutdown complete" in log


def test_init_backend_from_json_with_the_key_in_metadata(refl, server):
    """`grpcurl -H "authorization: Bearer $ADMIN" -d '{"command": {"@type": ...InitBackendCommand}}'`."""
    refl.message_class(PKG + "backend.InitBackendCommand")
    refl.message_class(PKG + "backend.InitBackendResponse")
    ex = refl.service(SERVICE).methods_by_name["Execute"]
    req = refl.from_json(ex.input_type.full_name, json.dumps(
        {"command": {"@type": f"type.googleapis.com/{PKG}backend.InitBackendCommand"}}))
    Resp = refl.message_class(ex.output_type.full_name)
    resp, _ = refl.unary(EXECUTE, req, Resp, timeout=30, metadata=[("authorization", f"Bearer {server.admin_key}")])
    out = json.loads(json_format.MessageToJson(resp, descriptor_pool=refl.pool))
    assert out["commandResponse"]["@type"] == f"type.googleapis.com/{PKG}backend.InitBackendResponse"
    assert any("backend ready" in m["message"] for m in out["messages"]), out
    # Without any key the same request is refused.
    with pytest.raises(grpc.RpcError) as e:
        refl.unary(EXECUTE, req, Resp, timeout=30)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
