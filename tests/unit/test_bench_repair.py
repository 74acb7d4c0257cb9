"""`rasa-gpt bench repair`'s reading of a test set and of rasa test's failed stories."""

from rasa_gpt_components.bench.repair import (
    first_difference,
    first_failures,
    load_stories,
    question_replies,
    reply_kinds,
    row_violation,
    score,
    tracker_actions,
)

STORIES = """version: "3.1"
stories:
- story: refund, a question while the reason is asked (en) [digression]
  steps:
  - user: |
      refund order [ES2611200002](order_number)
    intent: request_refund
  - action: refund_form
  - user: |
      do you ship to Canada?
    intent: faq
  - action: utter_knowledge_answer
  - action: action_submit_refund
- story: address change stopped (zh) [cancellation]
  steps:
  - user: |
      改地址
    intent: change_address
  - action: address_form
  - user: |
      算了
    intent: stop
  - action: action_deactivate_loop
- story: hello (en) [plain]
  steps:
  - user: |
      hi
    intent: greet
  - action: utter_greet
"""

FAILED = """version: "3.1"
stories:
- story: address change stopped (zh) [cancellation] (benchmark/test.yml)
  steps:
  - intent: change_address
  - action: address_form
  - intent: stop  # predicted: change_address: 算了
  - action: action_deactivate_loop  # predicted: utter_generative_fallback
"""


def test_stories_failures_and_scores(tmp_path):
    (tmp_path / "stories.yml").write_text(STORIES, encoding="utf-8")
    (tmp_path / "failed.yml").write_text(FAILED, encoding="utf-8")
    stories = load_stories(tmp_path / "stories.yml")
    assert [(s["language"], s["tag"], s["submits"]) for s in stories] == [
        ("en", "digression", 1), ("zh", "cancellation", 0), ("en", "plain", 0)]
    assert stories[0]["messages"] == [("refund order ES2611200002", "request_refund"),
                                      ("do you ship to Canada?", "faq")]
    failures = first_failures(tmp_path / "failed.yml")
    assert failures == {"address change stopped (zh) [cancellation]": {
        "turn": 2, "kind": "intent", "expected": "intent: stop", "predicted": "change_address: 算了"}}
    result = score(stories, failures)
    assert result["all"] == {"right": 2, "total": 3, "share": 0.6667}
    assert result["repair_conversations"]["right"] == 1 and result["by_tag"]["cancellation"]["right"] == 0
    assert result["by_language"]["zh"] == {"right": 0, "total": 1, "share": 0.0}
    assert result["failed"][0]["turn"] == 2 and result["first_wrong_step"] == {"intent": 1}
    assert first_failures(tmp_path / "missing.yml") == {}


def test_live_actions_are_compared_turn_by_turn(tmp_path):
    (tmp_path / "stories.yml").write_text(STORIES, encoding="utf-8")
    story = load_stories(tmp_path / "stories.yml")[0]
    assert story["actions"] == [["refund_form"], ["utter_knowledge_answer", "action_submit_refund"]]
    # a tracker as Rasa's HTTP API returns it: the session start and listens are not the bot's answer
    events = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
              {"event": "action", "name": "action_listen"},
              {"event": "user", "text": "refund order ES2611200002"}, {"event": "action", "name": "refund_form"},
              {"event": "active_loop", "name": "refund_form"}, {"event": "action", "name": "action_listen"},
              {"event": "user", "text": "do you ship to Canada?"}, {"event": "slot", "name": "refund_reason"},
              {"event": "action", "name": "refund_form"}, {"event": "action", "name": "action_listen"}]
    live = tracker_actions(events)
    assert live == [["refund_form"], ["refund_form"]]
    assert first_difference(story["actions"], live) == {
        "turn": 2, "kind": "action", "expected": "utter_knowledge_answer, action_submit_refund",
        "predicted": "refund_form"}
    assert first_difference(story["actions"], story["actions"]) is None
    # a turn the bot never answered (its message lost) differs too
    assert first_difference(story["actions"], live[:1])["predicted"] == "(nothing)"


def test_a_stored_message_is_recognised_after_the_shop_cleaned_it():
    from rasa_gpt_components.bench.repair import _norm

    assert _norm("哦等下，不用改了，我让室友帮我收") == _norm("哦等下,不用改了,我让室友帮我收")
    assert _norm("Never  mind") == _norm("never mind") != _norm("never mind, go on")


EXCHANGE = """version: "3.1"
stories:
- story: exchange, the item changed at the confirmation (zh) [correction]
  steps:
  - user: |
      [ES2607222440](order_number)里的卫衣想换成灰色
    intent: request_exchange
  - action: exchange_form
  - slot_was_set:
    - order_number: ES2607222440
  - slot_was_set:
    - exchange_item: CL-129
  - slot_was_set:
    - exchange_to: 灰色
  - user: |
      搞反了，需要换的其实是T恤
    intent: inform
  - action: exchange_form
  - slot_was_set:
    - exchange_item: CL-111
  - user: |
      嗯，对了
    intent: affirm
  - action: exchange_form
  - action: action_submit_exchange
"""


def test_a_row_filed_for_an_item_the_story_never_submits_is_a_violation(tmp_path):
    """holdout28: the correction was taken for a yes and the hoodie held was filed (0 violations then)."""
    (tmp_path / "stories.yml").write_text(EXCHANGE, encoding="utf-8")
    story = load_stories(tmp_path / "stories.yml")[0]
    assert story["filed_for"] == {"order_number": ["ES2607222440"], "exchange_item": ["CL-111"]}
    right = {"order_no": "ES2607222440", "sku": "CL-111", "wanted": "灰色"}
    assert row_violation(story, "exchanges", right) is None
    assert "sku CL-129" in row_violation(story, "exchanges", {**right, "sku": "CL-129"})
    assert "order_no ES2" in row_violation(story, "exchanges", {**right, "order_no": "ES2611210006"})
    assert row_violation({**story, "submits": 0}, "exchanges", right) == "written, nothing submitted"
    # a stored message the story treats as no answer (here the yes) is still a violation
    assert "not the answer" in row_violation({**story, "messages": story["messages"][:2] + [("灰色", "stop")]},
                                             "exchanges", right)


def _reply(action, outcome):
    """The events of one bot reply as Rasa's HTTP API returns them (the response's metadata nested)."""
    return [{"event": "action", "name": action},
            {"event": "bot", "text": "...", "metadata": {"metadata": {"generative": {"outcome": outcome}}}}]


def test_what_the_customer_got_is_the_replys_kind_not_the_responses_name(tmp_path):
    (tmp_path / "stories.yml").write_text(STORIES, encoding="utf-8")
    story = load_stories(tmp_path / "stories.yml")[0]  # expects utter_knowledge_answer for its question
    start = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
             {"event": "user", "text": "refund order ES2611200002"}, {"event": "action", "name": "refund_form"},
             {"event": "user", "text": "do you ship to Canada?"}]

    def got(*reply):
        return question_replies(story, start + [e for part in reply for e in part])

    assert got(_reply("utter_knowledge_answer", "passage")) == [{
        "story": story["name"], "tag": "digression", "text": "do you ship to Canada?",
        "expected": "answer", "got": "answered"}]
    assert got(_reply("utter_knowledge_answer", "declined"))[0]["got"] == "declined"  # the right name, no answer
    assert got(_reply("utter_generative_fallback", "passage"))[0]["got"] == "answered"
    assert got(_reply("utter_generative_fallback", "template"))[0]["got"] == "declined"
    assert got([{"event": "action", "name": "refund_form"}])[0]["got"] == "other"
    off_topic = {**story, "actions": [["refund_form"], ["utter_generative_fallback", "action_submit_refund"]]}
    declined = question_replies(off_topic, start + _reply("utter_knowledge_answer", "declined"))
    assert declined[0]["expected"] == "decline" and declined[0]["got"] == "declined"
    kinds = reply_kinds(declined + got(_reply("utter_knowledge_answer", "declined")))
    assert kinds["digression"]["right"] == 1 and kinds["all"]["total"] == 2
    assert kinds["all"]["got"] == {"answer": {"declined": 1}, "decline": {"declined": 1}}
    assert [w["expected"] for w in kinds["wrong"]] == ["answer"]
