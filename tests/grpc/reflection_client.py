"""A gRPC client that knows nothing of duckstore's protos: everything it sends is built from what the
server's reflection service describes, as grpcurl or any generic gRPC tool does.

The only compiled protocol messages are the standard gRPC health and reflection messages, generated at
test time by protoc from Debian's grpc-proto package (/usr/share/grpc-proto), never from proto/.
`ReflectionClient` lists services, fetches FileDescriptorProtos (by file name or by symbol, with their
dependencies) into a fresh DescriptorPool, and builds messages from JSON (with "@type" for an Any),
exactly as an operator's `grpcurl -d '{...}'` does.
"""

import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

GRPC_PROTO_DIR = Path("/usr/share/grpc-proto")
STANDARD_PROTOS = ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto",
                   "grpc/reflection/v1alpha/reflection.proto"]

_modules = {}


def standard_modules():
    """health_pb2, reflection v1 and v1alpha pb2 modules, compiled now from the Debian .proto files."""
    if _modules:
        return _modules
    missing = [p for p in STANDARD_PROTOS if not (GRPC_PROTO_DIR / p).exists()]
    assert not missing, f"Debian package grpc-proto is not installed (missing {missing}); run scripts/setup.sh"
    out = Path(tempfile.mkdtemp(prefix="grpc-std-protos-"))
    subprocess.run([shutil.which("protoc") or "protoc", f"--proto_path={GRPC_PROTO_DIR}", f"--python_out={out}",
                    *STANDARD_PROTOS], check=True)
    # A private package name, so nothing else called "grpc" on sys.path is shadowed.
    pkg = out / "stdproto"
    (out / "grpc").rename(pkg)
    for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    sys.path.insert(0, str(out))
    for name, mod in [("health", "stdproto.health.v1.health_pb2"),
                      ("reflection_v1", "stdproto.reflection.v1.reflection_pb2"),
                      ("reflection_v1alpha", "stdproto.reflection.v1alpha.reflection_pb2")]:
        _modules[name] = importlib.import_module(mod)
    return _modules


class ReflectionError(AssertionError):
    def __init__(self, code, message):
        super().__init__(f"reflection error {code}: {message}")
        self.code = code
        self.message = message


class ReflectionClient:
    """Talks to one server through server reflection (v1 by default, or v1alpha)."""

    def __init__(self, target, version="v1"):
        self.channel = grpc.insecure_channel(target)
        self.version = version
        self.refl = standard_modules()["reflection_" + version]
        self.pool = descriptor_pool.DescriptorPool()
        self.factory = message_factory.MessageFactory(self.pool)
        self.files = {}  # name -> FileDescriptorProto, everything fetched so far
        self._stream = self.channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.refl.ServerReflectionResponse.FromString)

    def close(self):
        self.channel.close()

    def ask(self, *requests, timeout=10):
        """Sends the requests on one stream; returns the responses in order."""
        return list(self._stream(iter(requests), timeout=timeout))

    def ask_one(self, **fields):
        (resp,) = self.ask(self.refl.ServerReflectionRequest(**fields))
        if resp.HasField("error_response"):
            raise ReflectionError(resp.error_response.error_code, resp.error_response.error_message)
        return resp

    def list_services(self):
        return sorted(s.name for s in self.ask_one(list_services="*").list_services_response.service)

    def _take(self, resp):
        names = []
        for blob in resp.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
            self.files.setdefault(fd.name, fd)
            names.append(fd.name)
        return names

    def file_by_name(self, name):
        return self._take(self.ask_one(file_by_filename=name))

    def file_containing(self, symbol):
        return self._take(self.ask_one(file_containing_symbol=symbol))

    def _add(self, name):
        try:
            self.pool.FindFileByName(name)
            return
        except KeyError:
            pass
        fd = self.files.get(name)
        if fd is None:
            self.file_by_name(name)
            fd = self.files[name]
        for dep in fd.dependency:
            self._add(dep)
        self.pool.Add(fd)

    def message_class(self, full_name):
        """The class of a message type, described by the server only."""
        if full_name not in self._known_symbols():
            self.file_containing(full_name)
        for name in list(self.files):
            self._add(name)
        return self.factory.GetPrototype(self.pool.FindMessageTypeByName(full_name))

    def _known_symbols(self):
        out = set()
        for fd in self.files.values():
            pkg = fd.package + "." if fd.package else ""

            def walk(prefix, msgs):
                for m in msgs:
                    out.add(prefix + m.name)
                    walk(prefix + m.name + ".", m.nested_type)
            walk(pkg, fd.message_type)
        return out

    def service(self, full_name):
        if not any(full_name == (fd.package + "." + s.name) for fd in self.files.values() for s in fd.service):
            self.file_containing(full_name)
        for name in list(self.files):
            self._add(name)
        return self.pool.FindServiceByName(full_name)

    def from_json(self, full_name, text):
        """A message of type full_name parsed from JSON; an Any inside may name any reflected type (@type)."""
        msg = self.message_class(full_name)()
        json_format.Parse(text, msg, descriptor_pool=self.pool)
        return msg

    def unary(self, method_path, request, response_type, **kw):
        """Calls a unary method with dynamic messages; returns (response, call)."""
        fn = self.channel.unary_unary(method_path, request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=response_type.FromString)
        return fn.with_call(request, **kw)
