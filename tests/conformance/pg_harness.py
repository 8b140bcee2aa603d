"""A real PostgreSQL server for the conformance suite, in a temporary directory on a loopback port.

    PgServer(base_dir).start()   initdb (first time) + pg_ctl start; .stop(); .createdb(name); .psql(sql)

The server binaries come from Debian's `postgresql` package (scripts/setup.sh installs it). initdb and
postgres refuse to run as root, so when the tests run as root every server command runs as the
`postgres` user (runuser), in a data directory owned by that user. Authentication is `trust` on
loopback only; fsync is off (a test server, thrown away after the run).
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bindir():
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if os.path.exists(os.path.join(cand, "initdb")) and int(Path(cand).parent.name) >= 15:
            return cand
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise RuntimeError("PostgreSQL >= 15 server binaries not found: run scripts/setup.sh (Debian package postgresql)")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, base_dir=None):
        self.bindir = _bindir()
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="ds-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.running = False
        self.user = "postgres"

    def _run(self, argv, check=True, timeout=60):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout.decode(errors='replace')}"
                               f"\n{self.log_tail()}")
        return r

    def log_tail(self, n=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def init(self):
        if (self.data / "PG_VERSION").exists():
            return
        self.sock.mkdir(exist_ok=True)
        if self.as_root:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sock, "postgres")
        self._run([f"{self.bindir}/initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8",
                   "--locale=C", "--no-sync"])

    def start(self):
        self.init()
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([f"{self.bindir}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
                   "start"])
        self.running = True
        return self

    def stop(self, mode="fast"):
        if self.running:
            self._run([f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"],
                      check=False)
            self.running = False

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql, db="postgres"):
        r = subprocess.run([f"{self.bindir}/psql" if os.path.exists(f"{self.bindir}/psql") else "psql",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", db, "-v",
                            "ON_ERROR_STOP=1", "-qAtc", sql],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed:\n{r.stdout.decode(errors='replace')}")
        return r.stdout.decode()

    def createdb(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def env(self, database):
        """The duckstore settings of the postgres backend for this server and database."""
        return {
            "DUCKSTORE_BE_POSTGRES_HOST": "127.0.0.1",
            "DUCKSTORE_BE_POSTGRES_PORT": str(self.port),
            "DUCKSTORE_BE_POSTGRES_USER": self.user,
            "DUCKSTORE_BE_POSTGRES_DATABASE": database,
            "DUCKSTORE_BE_POSTGRES_POOL_SIZE": "4",
            "DUCKSTORE_BE_POSTGRES_RETRY_MS": "300",
        }

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.psql("SELECT 1")
                return
            except RuntimeError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not become ready")
