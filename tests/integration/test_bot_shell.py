"""The reference bot: `rasa train` it, `rasa data validate` and `rasa test` it, and talk
to it through a real `rasa shell` on a pty with the real action server and database."""

import json
import os
import pty
import re
import select
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
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


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The action server on a free port over a fresh shop database, and an
    endpoints file that points at it (with its own conversation database)."""
    folder = tmp_path_factory.mktemp("shop")
    port = _free_port()
    env = dict(os.environ, SHOP_DATABASE_URL=f"sqlite:///{folder / 'shop.db'}", PYTHONWARNINGS="ignore")
    server = subprocess.Popen(
        [RASA, "run", "actions", "--port", str(port)], cwd=BOT, env=env,
        stdout=subprocess.DEVNULL, stderr=(folder / "actions.log").open("wb"),
    )
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the action server did not start: " + (folder / "actions.log").read_text()[-2000:])
        endpoints = (BOT / "endpoints.yml").read_text(encoding="utf-8")
        endpoints = endpoints.replace("http://localhost:5055/webhook", f"http://127.0.0.1:{port}/webhook")
        endpoints = endpoints.replace('db: "conversations.db"', f'db: "{folder / "conversations.db"}"')
        (folder / "endpoints.yml").write_text(endpoints, encoding="utf-8")
        yield folder
    finally:
        server.terminate()
        server.wait(timeout=30)


def _say(fd: int, text: str, expect: str, timeout: float = 60) -> str:
    os.write(fd, text.encode("utf-8") + b"\r")
    return _read_until(fd, expect, timeout)


def test_rasa_shell_serves_a_customer_in_english_and_chinese(trained_model, shop):
    main, child = pty.openpty()
    process = subprocess.Popen(
        [RASA, "shell", "--model", str(trained_model), "--port", str(_free_port()),
         "--endpoints", str(shop / "endpoints.yml")],
        cwd=BOT,
        stdin=child,
        stdout=child,
        stderr=child,
        env=dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="200"),
        close_fds=True,
    )
    os.close(child)
    try:
        _read_until(main, r"Your input ->", timeout=300)
        _say(main, "hello", r"welcome to Example Shop")
        _say(main, "are you a bot?", r"virtual assistant")
        # order lookup in English, through the action server and the shop database
        _say(main, "where is order ES2611210006?", r"Order ES2611210006: Shipped")
        # a knowledge-base question: GenerativeNLG answers from bot/knowledge
        _say(main, "How much does shipping to Hong Kong cost?", r"SF Express[^\n]*30 yuan")
        # a refund in Chinese, of the order just looked up: the form asks for the
        # reason and a confirmation (the order number it already has), in Chinese now
        _say(main, "我要退款", r"退款的原因")
        _say(main, "质量有问题，线头很多", r"为订单 ES2611210006 申请退款[^\n]*确认提交吗")
        _say(main, "是的", r"退款申请已提交，退款单号 RF000001")
        _say(main, "是的", r"Your input ->")  # a repeated "yes" writes nothing twice
        # recommendations for the customer of that order (past orders), in Chinese
        _say(main, "有什么推荐的吗", r"为您推荐以下商品：\s*- \S+")
        # off-script in Chinese: the generative fallback answers from the knowledge base
        _say(main, "寄到澳门运费多少钱？", r"顺丰速运[^\n]*30 元")
        os.write(main, b"/stop\r")
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    with sqlite3.connect(shop / "shop.db") as db:
        assert db.execute("select order_no from refunds").fetchall() == [("ES2611210006",)]
    with sqlite3.connect(shop / "conversations.db") as db:  # the SQL tracker store kept the conversation
        assert db.execute("select count(*) from events").fetchone()[0] > 20


def test_bot_data_is_valid_and_its_test_stories_pass(trained_model, tmp_path):
    validate = subprocess.run([RASA, "data", "validate"], cwd=BOT, capture_output=True, text=True, timeout=300)
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-2000:]
    result = subprocess.run(
        [RASA, "test", "core", "--model", str(trained_model), "--stories", "tests", "--out", str(tmp_path)],
        cwd=BOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0, report["conversation_accuracy"]
