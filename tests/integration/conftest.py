"""Fixtures the integration tests share: free ports, the reference bot trained once
per session, and the bot's action server over a fresh shop database."""

import os
import re
import select
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

BOT = Path(__file__).resolve().parents[2] / "bot"
RASA = str(Path(sys.executable).with_name("rasa"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_until(fd: int, pattern: str, timeout: float) -> str:
    """Read the pty until ``pattern`` appears (ANSI codes stripped)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode("utf-8", "replace")
            except OSError:
                break
            seen += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", chunk)
            if re.search(pattern, seen):
                return seen
    raise AssertionError(f"'{pattern}' did not appear within {timeout} s; output:\n{seen[-3000:]}")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models")
    started = time.monotonic()
    result = subprocess.run(
        [RASA, "train", "--quiet", "--out", str(out), "--fixed-model-name", "bot"],
        cwd=BOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert time.monotonic() - started < 300, "rasa train must take under 5 minutes on 2 cores"
    return out / "bot.tar.gz"


def start_action_server(folder: Path, port: int, database_url: str) -> subprocess.Popen:
    """`rasa run actions` of the bot on ``port`` over ``database_url``; waits until healthy."""
    env = dict(os.environ, SHOP_DATABASE_URL=database_url, PYTHONWARNINGS="ignore")
    server = subprocess.Popen(
        [RASA, "run", "actions", "--port", str(port)], cwd=BOT, env=env,
        stdout=subprocess.DEVNULL, stderr=(folder / "actions.log").open("ab"),
    )
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise AssertionError("the action server did not start: " + (folder / "actions.log").read_text()[-2000:])


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The action server on a free port over a fresh shop database, and an
    endpoints file that points at it (with its own conversation database).
    One per test module, so each module starts from the same shop."""
    folder = tmp_path_factory.mktemp("shop")
    port = free_port()
    server = start_action_server(folder, port, f"sqlite:///{folder / 'shop.db'}")
    try:
        endpoints = yaml.safe_load((BOT / "endpoints.yml").read_text(encoding="utf-8"))
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{port}/webhook"
        assert endpoints["tracker_store"]["dialect"] == "sqlite"  # its own conversation database
        endpoints["tracker_store"]["db"] = str(folder / "conversations.db")
        (folder / "endpoints.yml").write_text(yaml.safe_dump(endpoints, allow_unicode=True), encoding="utf-8")
        yield folder
    finally:
        server.terminate()
        server.wait(timeout=30)
