"""The metrics and structured logs move when the real code paths run: GenerativeNLG's
answers, GenerativeFallbackPolicy's decisions, the WeChat and Slack channels, and the
/metrics endpoint. The registry is process-wide, so every check is a before/after delta."""

import logging
import re
import time
from types import SimpleNamespace
from typing import Dict, List, Optional

import pytest
from prometheus_client import REGISTRY
from rasa.core.actions.action import ActionBotResponse
from rasa.core.channels.channel import register
from rasa.shared.core.events import ActionExecuted, BotUttered
from sanic import Sanic

from rasa_gpt_components.serving.channels import MetricsInput, WeChatInput
from rasa_gpt_components.serving.channels.metrics import request_outcome, timed
from rasa_gpt_components.serving.channels.slack import SlackOutput
from rasa_gpt_components.serving.channels.wechat import signature
from rasa_gpt_components.generation.backends import Generation
from rasa_gpt_components.metrics import log_fields
from tests.fixtures.backends import Scripted
from tests.fixtures.conversations import POLICY_DOMAIN, policy_tracker, run, user
from tests.fixtures.conversations import nlg_tracker as tracker


def value(name: str, **labels: str) -> float:
    """A sample's current value (0 when it has not been created yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def total(name: str) -> float:
    """The sum of a counter's samples over all its labels."""
    return sum(sample.value for metric in REGISTRY.collect() for sample in metric.samples if sample.name == name)


class Delta:
    """How much samples moved since this was made."""

    def __init__(self, *samples: tuple) -> None:
        self.before = {sample: value(sample[0], **dict(sample[1:])) for sample in samples}

    def __getitem__(self, sample: tuple) -> float:
        return value(sample[0], **dict(sample[1:])) - self.before[sample]


def answers(action: str, outcome: str, reason: str) -> tuple:
    return ("rasa_gpt_answers_total", ("action", action), ("outcome", outcome), ("reason", reason))


GENERATED_NO = ("rasa_gpt_generation_seconds_count", ("backend", "local"), ("generated", "false"))
GENERATED_NO_SUM = ("rasa_gpt_generation_seconds_sum", ("backend", "local"), ("generated", "false"))
OVER_BUDGET = ("rasa_gpt_time_budget_exceeded_total",)


# --- the log format ---------------------------------------------------------------
def test_log_fields_are_logfmt():
    line = log_fields(action="utter_x", ms=19, score=0.6234, generated=False, passages="a,b", because="x < y", empty="")
    assert line == 'action=utter_x ms=19 score=0.62 generated=false passages=a,b because="x < y" empty=""'


# --- GenerativeNLG ------------------------------------------------------------------
def test_a_generative_answer_is_counted_timed_and_logged_without_texts(nlg, caplog):
    question = "How much does shipping cost?"
    generator = nlg(time_budget=2.0)
    first = run(generator.generate("utter_generative_fallback", tracker(question), "rest"))
    outcome, reason = first["metadata"]["generative"]["outcome"], first["metadata"]["generative"]["reason"]
    assert outcome == "passage"  # a random model's words fail the guardrails
    delta = Delta(answers("utter_generative_fallback", outcome, reason), GENERATED_NO, GENERATED_NO_SUM, OVER_BUDGET)
    with caplog.at_level(logging.INFO, logger="rasa_gpt_components.generation.nlg"):
        reply = run(generator.generate("utter_generative_fallback", tracker(question), "rest"))
    meta = reply["metadata"]["generative"]
    assert delta[answers("utter_generative_fallback", outcome, reason)] == 1
    assert delta[GENERATED_NO] == 1 and delta[GENERATED_NO_SUM] == pytest.approx(meta["ms"] / 1000, abs=0.01)
    assert delta[OVER_BUDGET] == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GenerativeNLG answer ")]
    assert len(lines) == 1 and caplog.records[-1].levelno == logging.INFO
    assert lines[0].startswith(f"GenerativeNLG answer action=utter_generative_fallback outcome=passage reason={reason} "
                               f"generated=false language=en ms=")
    logged = re.search(r" ms=(\d+) retrieval_ms=(\d+) tokens=", lines[0])
    # the log rounds to 1 ms, the metadata to 0.1 ms
    assert abs(int(logged.group(1)) - meta["ms"]) <= 1 and abs(int(logged.group(2)) - meta["retrieval_ms"]) <= 1
    assert "passages=shipping_cost " in lines[0] and lines[0].endswith(" backend=local")
    assert question not in caplog.text and reply["text"] not in caplog.text


def test_a_guardrail_refusal_is_counted_by_guardrail(nlg):
    generator = nlg()
    generator.answerer.backend = Scripted("Orders ship within 24 hours.")  # a changed fact: unsupported
    refusals = ("rasa_gpt_guardrail_refusals_total", ("guardrail", "unsupported"))
    delta = Delta(answers("utter_ship_time", "template", "unsupported"), refusals)
    reply = run(generator.generate("utter_ship_time", tracker("when do you ship?"), "rest"))
    assert reply["metadata"]["generative"]["reason"] == "unsupported"
    assert delta[answers("utter_ship_time", "template", "unsupported")] == 1 and delta[refusals] == 1


class Stuck:
    """A backend that ignores the deadline (a hung server, a stuck thread)."""

    def generate(self, prompt, max_new_tokens, deadline):
        time.sleep(1.5)
        return Generation("", 0, 1.5, "end")


def test_a_turn_over_the_time_budget_is_counted_and_logged_as_a_warning(nlg, caplog):
    generator = nlg(time_budget=0.2)
    generator.answerer.backend = Stuck()
    delta = Delta(OVER_BUDGET, answers("utter_generative_fallback", "template", "deadline"))
    with caplog.at_level(logging.INFO, logger="rasa_gpt_components.generation.nlg"):
        reply = run(generator.generate("utter_generative_fallback", tracker("How much does shipping cost?"), "rest"))
    assert reply["metadata"]["generative"]["reason"] == "deadline"
    assert delta[OVER_BUDGET] == 1 and delta[answers("utter_generative_fallback", "template", "deadline")] == 1
    assert caplog.records[-1].levelno == logging.WARNING and "reason=deadline" in caplog.records[-1].getMessage()


# --- GenerativeFallbackPolicy -------------------------------------------------------
def decisions(decision: str, reason: str) -> tuple:
    return ("rasa_gpt_fallback_decisions_total", ("decision", decision), ("reason", reason))


def turn(policy, events: List, bot_text: str = "...", by: Optional[str] = None) -> List:
    """``events`` plus what Rasa logs when the policy's prediction runs (or, with
    ``by``, the same action predicted by another policy)."""
    prediction = policy.predict_action_probabilities(policy_tracker(*events), POLICY_DOMAIN)
    action = POLICY_DOMAIN.action_names_or_texts[prediction.max_confidence_index]
    executed = ActionBotResponse(action).event_for_successful_execution(prediction)
    if by:
        executed = ActionExecuted(action, policy=by, confidence=1.0)
    return [*events, executed, BotUttered(bot_text)]


def listens(policy, events: List) -> None:
    prediction = policy.predict_action_probabilities(policy_tracker(*events), POLICY_DOMAIN)
    assert POLICY_DOMAIN.action_names_or_texts[prediction.max_confidence_index] == "action_listen"


def test_a_turn_the_policy_took_over_is_counted_once_with_its_reason(policy, caplog):
    p = policy()
    delta = Delta(decisions("fallback", "nlu_low_confidence"), decisions("fallback", "core_low_confidence"))
    events = turn(p, user("greet", 0.1))
    assert delta[decisions("fallback", "nlu_low_confidence")] == 0  # predicted, not yet said
    with caplog.at_level(logging.INFO, logger="rasa_gpt_components.policies.generative_fallback"):
        listens(p, events)
    assert delta[decisions("fallback", "nlu_low_confidence")] == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "GenerativeFallbackPolicy decision=fallback action=utter_generative_fallback "
        "reason=nlu_low_confidence confidence=1.00 intent=greet nlu_confidence=0.10"
    ]
    # a confident message: the fallback is only offered at core_threshold, and nothing is counted
    p.predict_action_probabilities(policy_tracker(*events, *user("greet", 0.95)), POLICY_DOMAIN)
    assert delta[decisions("fallback", "core_low_confidence")] == 0


def test_the_same_action_predicted_by_a_rule_is_not_counted(policy):
    p = policy()
    before = total("rasa_gpt_fallback_decisions_total")
    listens(p, turn(p, user("nlu_fallback", 0.9), by="RulePolicy"))
    assert total("rasa_gpt_fallback_decisions_total") == before
    delta = Delta(decisions("fallback", "fallback_intent"))
    listens(p, turn(p, user("nlu_fallback", 0.9)))
    assert delta[decisions("fallback", "fallback_intent")] == 1


def test_a_handoff_is_counted_as_a_handoff(policy):
    p = policy(max_consecutive_fallbacks=1)
    delta = Delta(decisions("handoff", "nlu_low_confidence"))
    events = turn(p, user("greet", 0.1))
    events = turn(p, [*events, *user("greet", 0.1)])
    assert events[-2].action_name == "utter_handoff"
    listens(p, events)
    assert delta[decisions("handoff", "nlu_low_confidence")] == 1


# --- channels -------------------------------------------------------------------------
def test_the_outcome_of_a_request_is_the_handlers_or_its_status():
    told = SimpleNamespace(ctx=SimpleNamespace(rasa_gpt_outcome="duplicate"))
    untold = SimpleNamespace(ctx=SimpleNamespace())
    assert request_outcome(told, 200) == "duplicate"
    assert [request_outcome(untold, status) for status in (200, 400, 403, 413, 503, 500)] == [
        None, "refused_400", "refused_403", "refused_413", "not_configured", "error"]


def wechat_request(body: str, token: str = "tok") -> SimpleNamespace:
    timestamp, nonce = str(int(time.time())), str(time.monotonic_ns())
    args = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    return SimpleNamespace(method="POST", body=body.encode("utf-8"), args=args, ctx=SimpleNamespace())


def wechat_message(kind: str = "text", msg_id: int = 1) -> str:
    body = "<Content><![CDATA[where is my order?]]></Content>" if kind == "text" else "<PicUrl><![CDATA[x]]></PicUrl>"
    return (f"<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}"
            f"<MsgId>{msg_id}</MsgId></xml>")


def test_wechat_requests_get_their_outcome():
    channel = WeChatInput(token="tok", app_id="wx1", mode="plaintext")

    async def bot(message) -> None:
        await message.output_channel.send_text_message(message.sender_id, "On its way.")

    def outcome(body: str) -> str:
        request = wechat_request(body)
        run(channel._receive(request, bot))
        return request_outcome(request, 200)

    assert outcome(wechat_message("text", 1)) == "answered_passive"
    assert outcome(wechat_message("text", 1)) == "duplicate"
    assert outcome(wechat_message("image", 2)) == "fixed_reply"


def test_turns_are_timed_even_when_they_fail():
    samples = ("rasa_gpt_channel_reply_seconds_count", ("channel", "test"))
    delta = Delta(samples)

    async def failing(message) -> None:
        raise RuntimeError("the bot failed")

    with pytest.raises(RuntimeError):
        run(timed("test", failing)(None))
    assert delta[samples] == 1


def test_message_api_failures_are_counted():
    closed = "http://127.0.0.1:1"  # nothing listens there: connection refused
    delta = Delta(("rasa_gpt_message_api_failures_total", ("channel", "wechat")),
                  ("rasa_gpt_message_api_failures_total", ("channel", "slack")))
    channel = WeChatInput(token="tok", app_id="wx1", secret="secret", mode="plaintext", api_base_url=closed)
    run(channel.sender.send("oUser1", ["part 1", "part 2"]))  # stops at the first failure
    assert delta[("rasa_gpt_message_api_failures_total", ("channel", "wechat"))] == 1
    with pytest.raises(Exception):
        run(SlackOutput("xoxb-test", api_url=closed + "/api/").send_text_message("D1", "hello"))
    assert delta[("rasa_gpt_message_api_failures_total", ("channel", "slack"))] == 1


# --- the endpoint ---------------------------------------------------------------------
def scrape(endpoint: MetricsInput, headers: Dict[str, str]):
    return endpoint.respond(SimpleNamespace(headers=headers))


def test_the_endpoint_is_mounted_at_exactly_slash_metrics():
    app = Sanic("rasa_gpt_metrics_route_test", configure_logging=False)
    register([MetricsInput()], app, "/webhooks/")  # as `rasa run` does
    assert app.url_for("rasa_gpt_metrics.scrape") == "/metrics"
    assert [route.path for route in app.router.routes] == ["metrics"]


def test_the_endpoint_serves_the_registry_in_prometheus_text_format():
    reply = scrape(MetricsInput(), {})
    assert reply.status == 200 and reply.content_type.startswith("text/plain; version=0.0.4")
    text = reply.body.decode("utf-8")
    for name in ("rasa_gpt_answers_total", "rasa_gpt_fallback_decisions_total", "rasa_gpt_generation_seconds",
                 "rasa_gpt_channel_requests_total", "rasa_gpt_time_budget_exceeded_total"):
        assert f"# TYPE {name}" in text
    openmetrics = scrape(MetricsInput(), {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.content_type.startswith("application/openmetrics-text")
    assert openmetrics.body.decode("utf-8").endswith("# EOF\n")


def test_a_token_is_required_when_set(monkeypatch):
    monkeypatch.setenv("RASA_GPT_METRICS_TOKEN", "s3cret")
    endpoint = MetricsInput.from_credentials(None)
    assert scrape(endpoint, {}).status == 401
    assert scrape(endpoint, {"Authorization": "Bearer wrong"}).status == 401
    assert scrape(endpoint, {"Authorization": "Bearer s3cret"}).status == 200
    assert MetricsInput.from_credentials({"auth_token": "other"}).auth_token == "other"  # the entry wins
    monkeypatch.delenv("RASA_GPT_METRICS_TOKEN")
    assert scrape(MetricsInput.from_credentials({}), {}).status == 200
    with pytest.raises(ValueError, match="auth_tokn"):
        MetricsInput.from_credentials({"auth_tokn": "x"})
