"""The reference bot: `rasa train` it, `rasa data validate` and `rasa test` it, and talk
to it through a real `rasa shell` on a pty with the real action server and database."""

import json
import os
import pty
import sqlite3
import subprocess

import pytest

from tests.integration.conftest import BOT, RASA, free_port, read_until

pytestmark = pytest.mark.integration


def _say(fd: int, text: str, expect: str, timeout: float = 60) -> str:
    os.write(fd, text.encode("utf-8") + b"\r")
    return read_until(fd, expect, timeout)


def test_rasa_shell_serves_a_customer_in_english_and_chinese(trained_model, shop):
    main, child = pty.openpty()
    process = subprocess.Popen(
        [RASA, "shell", "--model", str(trained_model), "--port", str(free_port()),
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
        read_until(main, r"Your input ->", timeout=300)
        _say(main, "hello", r"welcome to Example Shop")
        _say(main, "are you a bot?", r"virtual assistant")
        # order lookup in English, through the action server and the shop database
        _say(main, "where is order ES2611210006?", r"Order ES2611210006: Shipped")
        # a follow-up about that order: the lookup again on the slot, with its region's delivery time
        _say(main, "so when's it coming?", r"Order ES2611210006: Shipped[\s\S]*Delivery to your address: [^\n]*after shipment")
        # a knowledge-base question: GenerativeNLG answers from bot/knowledge
        _say(main, "How much does shipping to Hong Kong cost?", r"SF Express[^\n]*30 yuan")
        # a refund in Chinese, of the order just looked up: the form asks for the
        # reason and a confirmation (the order number it already has), in Chinese now
        _say(main, "我要退款", r"退款的原因")
        # a question inside the form is answered, never stored as the reason; the form asks again
        _say(main, "对了，你们能寄到香港吗？", r"香港和澳门[\s\S]*退款的原因")
        _say(main, "质量有问题，线头很多", r"为订单 ES2611210006 申请退款[^\n]*确认提交吗")
        _say(main, "是的", r"退款申请已提交，退款单号 RF000001")
        _say(main, "是的", r"Your input ->")  # a repeated "yes" writes nothing twice
        # recommendations for the customer of that order (past orders), in Chinese
        _say(main, "有什么推荐的吗", r"为您推荐以下商品：\s*- \S+")
        # a gift with a budget: items about 500 yuan, each with its reason
        _say(main, "有什么适合送给爸爸的礼物推荐吗？预算500左右", r"为您推荐以下商品：\s*- [^\n]+（[^\n]*接近您的预算）")
        # a follow-up: cheaper than everything just shown, still for a father
        _say(main, "有没有更便宜一点的", r"为您推荐以下商品：\s*- [^\n]+（[^\n]*在预算内）")
        # another form's request inside a form: the refund stops (nothing filed) and the exchange
        # starts with the same order (of one item: the form asks what instead)
        _say(main, "I want a refund for ES2611200002", r"why you'd like a refund")
        _say(main, "actually can I swap it for another colour instead?",
             r"nothing was filed[\s\S]*What would you like instead")
        # off-script in Chinese: the generative fallback answers from the knowledge base
        _say(main, "寄到澳门运费多少钱？", r"顺丰速运[^\n]*30 元")
        _say(main, "算了", r"Your input ->")
        # a refund whose request gives the reason: the form confirms it at once; what is wrong,
        # told again in more words at the confirmation (read as a complaint), is the reason filed
        _say(main, "I want to return order ES2611200002, the screen is cracked",
             r'order ES2611200002, reason: "the screen is cracked"')
        _say(main, "the screen has a huge crack across it, this is really disappointing",
             r'reason: "the screen has a huge crack across it, this is really disappointing"')
        _say(main, "yes", r"order ES2611200002 has been submitted \(reference RF000002\)")
        os.write(main, b"/stop\r")
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    with sqlite3.connect(shop / "shop.db") as db:
        # the customer's reason, cleaned (NFKC: the full-width comma becomes ","), never the question asked before it
        assert db.execute("select order_no, reason from refunds order by id").fetchall() == [
            ("ES2611210006", "质量有问题,线头很多"),
            ("ES2611200002", "the screen has a huge crack across it, this is really disappointing")]
    with sqlite3.connect(shop / "conversations.db") as db:  # the SQL tracker store kept the conversation
        assert db.execute("select count(*) from events").fetchone()[0] > 20


def test_bot_data_is_valid_and_its_test_stories_pass(trained_model, tmp_path):
    validate = subprocess.run([RASA, "data", "validate"], cwd=BOT, capture_output=True, text=True, timeout=300)
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-2000:]
    # --e2e: the stories' texts go through the NLU too, so the intents and entities it
    # finds (LanguageDetector's included) must match the stories, not only the actions
    result = subprocess.run(
        [RASA, "test", "core", "--e2e", "--model", str(trained_model), "--stories", "tests", "--out", str(tmp_path)],
        cwd=BOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0, report["conversation_accuracy"]
