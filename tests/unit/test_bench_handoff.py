"""rasa-gpt bench handoff: how what the agent gets is scored, and the scripts' file."""

from pathlib import Path

import pytest

from rasa_gpt_components.bench.handoff import check, load_conversations, transcript_tail

BOT = Path(__file__).resolve().parents[2] / "bot"
CONVERSATION = {"id": "en-1", "language": "en", "ends": "request", "turns": [],
                "facts": {"order_numbers": ["ES2611210006"], "products": ["power bank"],
                          "actions": ["action_order_status", "refund_form"], "request": "one item is missing"}}


def test_facts_are_found_missed_or_the_bots_and_inventions_are_caught():
    said = "where is ES 2611210006\nOne item is missing, the power bank"
    got = '{"order": "ES2611210006", "done": ["action_order_status"]} one item is missing， power bank'
    result = check(CONVERSATION, got, ["action_order_status"], said, "en", ["power bank", "lipstick"])
    assert sorted(result["found"]) == ["action:action_order_status", "language:en", "order_numbers:ES2611210006",
                                       "products:power bank", "request:one item is missing"]
    assert result["missed"] == [] and result["bot_missed"] == ["action:refund_form"]  # it never ran
    invented = check(CONVERSATION, got + " ES2611190007 call 13812345678 https://x.example lipstick",
                     ["action_order_status"], said, "zh", ["lipstick"])
    assert invented["invented"] == ["order:ES2611190007", "phone:13812345678", "product:lipstick",
                                    "url:https://x.example"]
    assert "language:en" in invented["missed"]


def test_the_baseline_is_the_last_messages():
    events = [{"event": "user", "text": "a"}, {"event": "bot", "text": "b"}, {"event": "action", "name": "x"},
              {"event": "user", "text": "c"}]
    assert transcript_tail(events, 2) == "bot: b\ncustomer: c"


def test_the_reference_bots_scripts_load_and_are_enough(tmp_path):
    conversations = load_conversations(BOT / "benchmark" / "handoff_conversations.yml")
    for language in ("zh", "en"):
        assert sum(c["language"] == language for c in conversations) >= 20
    (tmp_path / "bad.yml").write_text('conversations:\n  - {id: x, turns: [hi]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="conversation x lacks"):
        load_conversations(tmp_path / "bad.yml")
