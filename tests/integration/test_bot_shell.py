"""The starter bot: `rasa train` it, then talk to it through a real `rasa shell` on a pty."""

import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BOT = Path(__file__).resolve().parents[2] / "bot"
RASA = str(Path(sys.executable).with_name("rasa"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_until(fd: int, pattern: str, timeout: float) -> str:
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


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models")
    result = subprocess.run(
        [RASA, "train", "--quiet", "--out", str(out), "--fixed-model-name", "bot"],
        cwd=BOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out / "bot.tar.gz"


def test_rasa_shell_answers(trained_model):
    main, child = pty.openpty()
    process = subprocess.Popen(
        [RASA, "shell", "--model", str(trained_model), "--port", str(_free_port())],
        cwd=BOT,
        stdin=child,
        stdout=child,
        stderr=child,
        env=dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="120"),
        close_fds=True,
    )
    os.close(child)
    try:
        _read_until(main, r"Your input ->", timeout=300)
        os.write(main, b"hello\r")
        _read_until(main, r"Hey! How are you\?", timeout=60)
        os.write(main, b"are you a bot?\r")
        _read_until(main, r"I am a bot, powered by Rasa\.", timeout=60)
        # off-script: the NLU is unsure, GenerativeFallbackPolicy hands the turn to
        # GenerativeNLG, which answers from bot/knowledge (the real default model retrieves)
        os.write(main, b"How much does shipping to Hong Kong cost?\r")
        _read_until(main, r"SF Express[^\n]*30 yuan", timeout=60)
        os.write(main, "寄到澳门运费多少钱？\r".encode("utf-8"))
        _read_until(main, r"顺丰速运[^\n]*30 元", timeout=60)
        os.write(main, b"/stop\r")
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
