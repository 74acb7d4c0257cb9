"""rasa-gpt bench followup end to end on a small knowledge base and a tiny model."""

import json

import pytest

from rasa_gpt_components.bench.followup import load_followups
from rasa_gpt_components.cli import main
from tests.unit.test_knowledge import DELIVERY

FOLLOW_UPS = """
version: "1"
follow_ups:
  - {id: f1, language: en, kind: follow_up, before: "I live in Chengdu", text: "how many days does delivery take",
     passage: delivery_chengdu}
  - {id: s1, language: en, kind: standalone, before: "I live in Chengdu", text: "do gift cards expire",
     passage: gift_cards}
"""


def test_bench_followup_compares_the_conversation_with_the_message_alone_and_bm25(tmp_path, tiny_model):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "shop.yml").write_text(DELIVERY, encoding="utf-8")
    (tmp_path / "f.yml").write_text(FOLLOW_UPS, encoding="utf-8")
    out = tmp_path / "out"
    options = json.dumps({"retrieval": {"bm25_weight": 1.0, "threshold": 0.2, "context_weight": 0.5}})
    assert main(["bench", "followup", "--kb", str(tmp_path / "kb"), "--questions", str(tmp_path / "f.yml"),
                 "--model", str(tiny_model), "--nlg-options", options, "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    follow, standalone = data["groups"]["en follow_up"], data["groups"]["en standalone"]
    # the follow-up is answered about Chengdu only in the conversation; the standalone question every way
    assert (follow["in_conversation_answered_right"], follow["alone_right_first"], follow["bm25_right_first"]) == (1, 0, 0)
    assert (follow["ranked_in_conversation_right_first"], follow["ranked_alone_right_first"]) == (1, 0)
    assert (standalone["in_conversation_answered_right"], standalone["alone_answered_right"],
            standalone["bm25_right_first"]) == (1, 1, 1)
    assert data["groups"]["zh follow_up"]["items"] == 0 and data["retrieval"]["context_weight"] == 0.5
    assert "f1" in (out / "report.md").read_text(encoding="utf-8")  # listed: some way got it wrong


def test_a_follow_up_file_is_checked(tmp_path):
    (tmp_path / "f.yml").write_text('follow_ups:\n  - {id: x, language: en, kind: maybe, before: a, text: b, passage: c}\n',
                                    encoding="utf-8")
    with pytest.raises(ValueError, match="kind"):
        load_followups(tmp_path / "f.yml")
