"""Faults, one at a time, against `rasa run` of the bot over HTTP on 127.0.0.1:
the model server slow and then down, the action server down and back, the
PostgreSQL database (the shop's and the conversations') down and back. Each time the customer gets an answer within
the time budget, the conversation goes on afterwards, and every message and
reply is in the tracker store. (A killed and restarted bot process is in
test_scale_out.py.)"""

import time
from typing import Dict, List, Tuple

import pytest
import yaml

from tests.fixtures.slow_server import SlowServer
from tests.integration import rasa_server, services
from tests.integration.conftest import BOT, free_port, start_action_server

pytestmark = pytest.mark.integration

BUDGET = 2.0  # GenerativeNLG time_budget here (the bot's own is 4.5 s)
MARGIN = 1.5  # NLU, policies and HTTP around it


@pytest.fixture(scope="module")
def bot(trained_model, tmp_path_factory):
    """The bot with its shop on PostgreSQL and its generator on a model server
    that never answers in time."""
    folder = tmp_path_factory.mktemp("faults")
    model_server = SlowServer()
    with services.postgres() as postgres:
        database_url = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
        actions_port = free_port()
        actions = {"process": start_action_server(folder, actions_port, database_url)}
        endpoints = yaml.safe_load((BOT / "endpoints.yml").read_text(encoding="utf-8"))
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{actions_port}/webhook"
        # the conversations in the same PostgreSQL, kept through its outage
        endpoints["tracker_store"] = {"type": "rasa_gpt_components.serving.ResilientSQLTrackerStore",
                                      "dialect": "postgresql", "url": "127.0.0.1", "port": postgres.port,
                                      "db": "postgres", "username": "postgres", "retry_interval": 1.0}
        endpoints["nlg"].update(backend="openai", base_url=model_server.url + "/v1", time_budget=BUDGET)
        (folder / "endpoints.yml").write_text(yaml.safe_dump(endpoints, allow_unicode=True), encoding="utf-8")
        (folder / "credentials.yml").write_text("rest:\n", encoding="utf-8")
        server = rasa_server.start(trained_model, folder / "endpoints.yml", folder / "credentials.yml",
                                   folder / "rasa.log", extra_args=["--enable-api"])
        try:
            yield {"server": server, "model_server": model_server, "postgres": postgres, "actions": actions,
                   "actions_port": actions_port, "database_url": database_url, "folder": folder, "sent": {}}
        finally:
            rasa_server.stop(server)
            actions["process"].terminate()
            model_server.close()


def say(bot: Dict, sender: str, text: str) -> Tuple[List[str], float]:
    """The bot's replies and how long they took; remembered for the tracker check."""
    started = time.monotonic()
    replies = bot["server"].say(sender, text)
    elapsed = time.monotonic() - started
    bot["sent"].setdefault(sender, []).append((text, replies, elapsed))
    return replies, elapsed


def test_a_slow_then_dead_model_server_still_gets_an_answer_within_the_budget(bot):
    replies, elapsed = say(bot, "fault-model", "寄到澳门运费多少钱？")
    assert bot["model_server"].requests >= 1  # the generator was asked, and kept it waiting
    assert replies and replies[0].strip() and elapsed < BUDGET + MARGIN, (replies, elapsed)
    bot["model_server"].close()  # now down: connections refused
    replies, elapsed = say(bot, "fault-model", "How much does shipping to Hong Kong cost?")
    assert replies and replies[0].strip() and elapsed < BUDGET + MARGIN, (replies, elapsed)
    replies, _ = say(bot, "fault-model", "where is order ES2611210006?")  # and the conversation goes on
    assert any("ES2611210006" in text for text in replies)


def test_the_action_server_down_gets_an_apology_then_service_resumes(bot):
    bot["actions"]["process"].kill()
    bot["actions"]["process"].wait(timeout=30)
    replies, elapsed = say(bot, "fault-actions", "where is order ES2611210006?")
    # (in English or Chinese: the apology is a response of the domain; the language slot is the NLU's)
    assert any(apology in text for text in replies for apology in ("something went wrong", "系统出了点问题")), replies
    assert elapsed < BUDGET + MARGIN
    bot["actions"]["process"] = start_action_server(bot["folder"], bot["actions_port"], bot["database_url"])
    replies, _ = say(bot, "fault-actions", "where is order ES2611210006?")
    assert any("Order ES2611210006: Shipped" in text for text in replies), replies


def test_the_database_down_then_back(bot):
    say(bot, "fault-database", "你好")  # a conversation under way
    bot["postgres"].stop()
    try:
        # the shop cannot answer, and the conversation cannot be stored: the customer still gets an answer
        replies, elapsed = say(bot, "fault-database", "我的订单 ES2611200002 到哪了？")
        assert any("系统繁忙" in text for text in replies), replies
        assert elapsed < BUDGET + MARGIN + 2.0  # the database driver's connection attempt
        replies, _ = say(bot, "fault-new-during-outage", "are you a bot?")  # and one that begins now
        assert any("virtual assistant" in text for text in replies), replies
    finally:
        bot["postgres"].start()
    replies, _ = say(bot, "fault-database", "我的订单 ES2611200002 到哪了？")
    assert any("ES2611200002" in text and "系统繁忙" not in text for text in replies), replies
    time.sleep(2)  # the tracker store writes what it kept (retry_interval 1 s)


def test_no_message_or_reply_was_lost(bot):
    assert bot["sent"], "runs after the fault tests"
    for sender, exchanges in bot["sent"].items():
        events = bot["server"].tracker_events(sender)
        assert [e["text"] for e in events if e["event"] == "user"] == [text for text, _, _ in exchanges]
        assert [e["text"] for e in events if e["event"] == "bot"] == [r for _, replies, _ in exchanges for r in replies]
    print("\n".join(f"{sender}: {text!r} answered in {elapsed:.2f} s: {replies[0][:60]!r}"
                    for sender, exchanges in bot["sent"].items() for text, replies, elapsed in exchanges))
