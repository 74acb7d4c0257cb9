"""Throwaway PostgreSQL and Redis servers on 127.0.0.1 for the scale-out tests,
from Debian's packages (`make services` installs them: postgresql, redis-server).

Each runs from a temporary folder on a free port and is removed afterwards; as
root, PostgreSQL runs as the `postgres` user (it refuses to run as root)."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

from tests.integration.conftest import free_port


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise AssertionError(f"PostgreSQL's {name} is not installed: run `make services` (Debian: postgresql)")
    return found


def _as_postgres(command: List[str]) -> List[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    port: int
    folder: Path

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "stop"]),
                       capture_output=True, timeout=60)

    def start(self) -> None:
        result = subprocess.run(
            _as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "pg.log"),
                          "-w", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start"]),
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr + (self.folder / "pg.log").read_text()


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A fresh cluster (trust authentication on 127.0.0.1, user `postgres`) in
    its own temporary folder (one the `postgres` user can reach), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="rasa-gpt-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    initdb = subprocess.run(_as_postgres([_postgres_bin("initdb"), "-D", str(folder / "data"), "-U", "postgres",
                                          "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                            capture_output=True, text=True, timeout=300)
    assert initdb.returncode == 0, initdb.stdout + initdb.stderr
    server = Postgres(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis(folder: Path) -> Iterator[int]:
    """A Redis server without persistence; yields its port."""
    if not shutil.which("redis-server"):
        raise AssertionError("redis-server is not installed: run `make services` (Debian: redis-server)")
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)],
                               stdout=(folder / "redis.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        import redis as redis_client

        client = redis_client.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis_client.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError("redis-server did not start: " + (folder / "redis.log").read_text())
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
