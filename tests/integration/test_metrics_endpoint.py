"""GET /metrics of a real `rasa run` of the reference bot, over HTTP on 127.0.0.1:
conversations through REST and WeChat show up in the answer, decision, latency and
channel metrics, the structured log lines carry their fields and never the
customer's words, and with a token set nothing is served without it. The same
server hands conversations off to a stand-in agents' desk on 127.0.0.1 (signed
summaries; the desk up, then down)."""

import re
import secrets
import time
from typing import Dict, Tuple
from urllib.parse import urlencode

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rasa_gpt_components.handoff.conversation import response_metadata
from tests.fixtures.desk import SECRET, Desk
from tests.fixtures.wechat_official import OFFICIAL_ACCOUNT as OA
from tests.integration import rasa_server
from tests.integration.rasa_server import http
from tests.fixtures.channel_requests import plain_params, text_xml

pytestmark = pytest.mark.integration

TOKEN = "metrics-" + secrets.token_hex(8)
SHIPPING_QUESTION = "How much does shipping to Hong Kong cost?"
JOKE = "tell me a joke"  # out_of_scope: the generative fallback's turn

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def desk():
    server = Desk()
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(trained_model, shop, desk, tmp_path_factory):
    """`rasa run` with REST, WeChat (plaintext) and the metrics endpoint, its token from the
    environment; hand-offs go to ``desk``, signed with the secret from the environment."""
    folder = tmp_path_factory.mktemp("metrics")
    credentials = {"rest": None, "rasa_gpt_components.serving.WeChatInput": {"mode": "plaintext"},
                   "rasa_gpt_components.serving.MetricsInput": None}
    (folder / "credentials.yml").write_text(yaml.safe_dump(credentials), encoding="utf-8")
    endpoints = yaml.safe_load((shop / "endpoints.yml").read_text(encoding="utf-8"))
    endpoints["nlg"]["handoff"]["webhook"] = {"url": desk.url + "/desk", "timeout": 2, "retries": 1, "backoff": 0.1}
    (folder / "endpoints.yml").write_text(yaml.safe_dump(endpoints, allow_unicode=True), encoding="utf-8")
    env = {"RASA_GPT_METRICS_TOKEN": TOKEN, "WECHAT_TOKEN": OA["token"], "WECHAT_APP_ID": OA["app_id"],
           "RASA_GPT_HANDOFF_SECRET": SECRET}
    with rasa_server.running(trained_model, folder / "endpoints.yml", folder / "credentials.yml",
                             folder / "rasa.log", env=env, extra_args=["--enable-api"]) as running:
        yield running


def scrape(server) -> Samples:
    status, text = http("GET", server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and labels.items() <= dict(sample_labels).items())


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def test_metrics_need_the_token(server):
    assert http("GET", server.url + "/metrics")[0] == 401
    assert http("GET", server.url + "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert ("rasa_gpt_time_budget_exceeded_total", ()) in scrape(server)  # with the token


def test_rest_conversations_show_in_the_answer_and_decision_metrics(server):
    before = scrape(server)
    sender = "metrics_" + secrets.token_hex(4)
    assert re.search(r"SF Express[^\n]*30 yuan", "\n".join(server.say(sender, SHIPPING_QUESTION)))
    server.say(sender, JOKE)
    after = scrape(server)
    # both questions are answered from the knowledge base by GenerativeNLG, the joke by the fallback
    assert moved(before, after, "rasa_gpt_answers_total") == 2
    assert moved(before, after, "rasa_gpt_answers_total", action="utter_generative_fallback") >= 1
    assert moved(before, after, "rasa_gpt_fallback_decisions_total", decision="fallback") >= 1
    # the default model generates in no language: two turns of the passage or the decline, well within the budget
    assert moved(before, after, "rasa_gpt_generation_seconds_count", backend="local", generated="false") == 2
    assert 0 < moved(before, after, "rasa_gpt_generation_seconds_sum", backend="local") < 2 * 4.5
    assert moved(before, after, "rasa_gpt_generation_seconds_bucket", backend="local", generated="false", le="4.5") == 2
    assert moved(before, after, "rasa_gpt_time_budget_exceeded_total") == 0

    log = server.log_text()
    assert re.search(r"GenerativeNLG answer action=utter_\w+ outcome=(passage|declined) reason=\w+ generated=false "
                     r"language=en ms=\d+ retrieval_ms=\d+ tokens=\d+ "
                     r"passages=\S+ score=\S+ backend=local", log)
    assert re.search(r"GenerativeFallbackPolicy decision=fallback action=utter_generative_fallback "
                     r"reason=\w+ confidence=\d\.\d\d intent=\w+ nlu_confidence=\d\.\d\d", log)
    assert SHIPPING_QUESTION not in log and JOKE not in log and "30 yuan" not in log


def test_wechat_requests_show_in_the_channel_metrics(server):
    before = scrape(server)
    user = "oMetrics_" + secrets.token_hex(4)
    hello = text_xml(user, "你好", secrets.randbelow(10**18)).encode("utf-8")
    url, headers = server.url + "/webhooks/wechat/webhook?", {"Content-Type": "text/xml"}
    status, reply = http("POST", url + urlencode(plain_params()), hello, headers)
    assert status == 200 and "<Content>" in reply
    forged = dict(plain_params(), signature="0" * 40)
    assert http("POST", url + urlencode(forged), hello, headers)[0] == 403
    after = scrape(server)
    assert moved(before, after, "rasa_gpt_channel_requests_total", channel="wechat", outcome="answered_passive") == 1
    assert moved(before, after, "rasa_gpt_channel_requests_total", channel="wechat", outcome="refused_403") == 1
    assert moved(before, after, "rasa_gpt_channel_reply_seconds_count", channel="wechat") == 1
    assert user not in server.log_text()  # users appear only as the first 4 characters of their id


HANDOFF_REQUEST = "I want to talk to a real person, and please tell them my parcel ES2611210006 is missing one item"


def until(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_a_handoff_reaches_the_desk_and_a_desk_that_is_down_costs_the_customer_nothing(server, desk):
    before = scrape(server)
    sender = "handoff_" + secrets.token_hex(4)
    server.say(sender, "where is my order ES2611210006?")
    replies = server.say(sender, HANDOFF_REQUEST)
    assert any("human agent" in reply for reply in replies), replies
    body = until(lambda: next((b for b in desk.received if b["summary"]["conversation_id"] == sender), None))
    assert body is not None and desk.rejected == 0, "the signed summary did not reach the desk"
    summary = body["summary"]
    assert summary["mentioned"]["order_number"] == ["ES2611210006"] and summary["reason"] == "asked"
    assert "missing one item" in summary["last_message"] and summary["language"] == "en"
    assert {"action": "action_order_status", "label": "查询了订单状态"} in summary["done"]
    stored = [response_metadata(e)["handoff"] for e in server.tracker_events(sender)
              if e["event"] == "bot" and "handoff" in response_metadata(e)]
    assert [record["id"] for record in stored] == [body["id"]]  # in the tracker too, once

    desk.close()  # the desk goes down: the customer still gets the hand-off message
    other = "handoff_" + secrets.token_hex(4)
    assert any("人工客服" in reply for reply in server.say(other, "转人工"))
    failed = lambda: moved(before, scrape(server), "rasa_gpt_handoff_deliveries_total", outcome="failed")  # noqa: E731
    assert until(lambda: failed() == 1)
    after = scrape(server)
    assert moved(before, after, "rasa_gpt_handoff_deliveries_total", outcome="delivered") == 1
    assert moved(before, after, "rasa_gpt_handoffs_total", reason="asked") == 2
    assert "handoff delivery" in server.log_text() and "ES2611210006" not in server.log_text()
