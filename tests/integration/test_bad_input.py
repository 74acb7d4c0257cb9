"""The bad-input corpus (tests/fixtures/bad_input.py) through a real `rasa run`
of the reference bot, over HTTP on 127.0.0.1, through REST, the WeChat Official
Account (plaintext mode, signed) and Slack (signed events, answers posted to the
Web API stand-in).

Every (item, channel) gets a clear answer (a reply with text: in the REST
response, WeChat's passive reply or its customer-service API, Slack's
chat.postMessage) or a clean 4xx: never a 5xx, never more than 30 s, never
"Traceback" or a file path of a stack trace, a sentence of the system prompt,
a configured secret or the customer's <script> echoed in what comes back, and
never a failure in the server's log (a traceback, Rasa's JSON form of one, an
ERROR record). Items with nothing to answer (empty, white space: EMPTYISH in
the corpus) may get silence instead. After the whole corpus the server is
alive and still answers "hello" on each channel.

Malformed REST requests (not JSON, not an object, "message" not a string,
...) get the same checks.

Set BAD_INPUT_REPORT=<file> to get the table of outcomes (item, channel,
status, short answer) written there at the end."""

import json
import os
import re
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlencode

import pytest
import xmltodict
import yaml

from rasa_gpt_components.generation.prompts import REPHRASE_SYSTEM, SYSTEM
from tests.fixtures.bad_input import CORPUS, EMPTYISH, MALFORMED_REST_BODIES, Payload
from tests.fixtures.fake_apis import FakeAPIs
from tests.fixtures.wechat_official import OFFICIAL_ACCOUNT as OA
from tests.integration import rasa_server
from tests.integration.conftest import BOT
from tests.integration.rasa_server import http
from tests.fixtures.channel_requests import SLACK_SECRET, plain_params, slack_event, slack_request, text_xml

pytestmark = pytest.mark.integration

TIMEOUT = 30.0  # seconds: no request, and no answer through an API, may take longer
WECHAT_APP_SECRET = "oa-secret-" + secrets.token_hex(8)
SLACK_BOT_TOKEN = "xoxb-test-token"  # what the Slack stand-in accepts (tests/fixtures/fake_apis.py)
SECRET_VALUES = [WECHAT_APP_SECRET, OA["token"], OA["encoding_aes_key"], SLACK_SECRET, SLACK_BOT_TOKEN]
STACK_TRACE = ("Traceback", 'File "')


def _prompt_sentences() -> List[str]:
    """The instruction sentences of the system prompts: none may reach a customer."""
    sentences = []
    for text in [*SYSTEM.values(), *REPHRASE_SYSTEM.values()]:
        for sentence in re.split(r"[.。;；]", text.format(bot_name="Example Shop")):
            sentence = sentence.strip(" ,，")
            if len(sentence) >= 8 and "Example Shop" not in sentence:
                sentences.append(sentence.lower())
    assert len(sentences) >= 8, sentences
    return sentences


PROMPT_SENTENCES = _prompt_sentences()
OUTCOMES: Dict[Tuple[str, str], str] = {}  # (item, channel) -> "status: short answer"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


# --- the server -------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(trained_model, shop, tmp_path_factory):
    """`rasa run` with REST, the Official Account in plaintext mode and Slack, the
    secrets in the environment, and the WeChat and Slack APIs pointed at stand-ins."""
    folder = tmp_path_factory.mktemp("bad_input")
    apis = FakeAPIs()
    credentials = yaml.safe_load((BOT / "credentials.yml").read_text(encoding="utf-8"))
    credentials.pop("rasa_gpt_components.serving.WeComInput", None)
    credentials["rasa_gpt_components.serving.WeChatInput"].update(mode="plaintext", api_base_url=apis.url)
    credentials["rasa_gpt_components.serving.SlackInput"]["slack_api_url"] = apis.url + "/api/"
    (folder / "credentials.yml").write_text(yaml.safe_dump(credentials, allow_unicode=True), encoding="utf-8")
    env = dict(
        WECHAT_TOKEN=OA["token"], WECHAT_APP_ID=OA["app_id"], WECHAT_APP_SECRET=WECHAT_APP_SECRET,
        WECHAT_ENCODING_AES_KEY=OA["encoding_aes_key"],
        SLACK_BOT_TOKEN=SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET=SLACK_SECRET,
    )
    try:
        with rasa_server.running(trained_model, shop / "endpoints.yml", folder / "credentials.yml",
                                 folder / "rasa.log", env=env) as running:
            yield {"url": running.url, "apis": apis, "log": running.log, "process": running.process}
    finally:
        apis.close()
        _write_report()


def _write_report() -> None:
    target = os.environ.get("BAD_INPUT_REPORT")
    if target and OUTCOMES:
        lines = [f"{item} | {channel} | {outcome}" for (item, channel), outcome in OUTCOMES.items()]
        Path(target).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- checks shared by the channels --------------------------------------------------
def log_size(server) -> int:
    return server["log"].stat().st_size


def log_since(server, offset: int) -> str:
    with server["log"].open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def assert_clean(text: str, where: str) -> None:
    """No stack trace, no sentence of the system prompt, no secret in ``text``."""
    for marker in STACK_TRACE:
        assert marker not in text, f"{where}: a stack trace leaked ({marker!r}): {text[:2000]!r}"
    lowered = text.lower()
    for sentence in PROMPT_SENTENCES:
        assert sentence not in lowered, f"{where}: the system prompt leaked ({sentence!r}): {text[:2000]!r}"
    for value in SECRET_VALUES:
        assert value not in text, f"{where}: a secret leaked: {text[:2000]!r}"
    for raw in ("<script", "\x00", "\x1b["):  # the customer's markup or escapes echoed back
        assert raw not in lowered, f"{where}: {raw!r} in the answer: {text[:2000]!r}"


# a failure in the server's log: a Python traceback, Rasa's structured (JSON) form
# of one, Sanic's report of an unhandled exception, any ERROR or CRITICAL record
LOG_FAILURE = re.compile(r'Traceback|"exc_type"|Exception occurred while handling|^\S+ \S+ (?:ERROR|CRITICAL) ', re.M)


def assert_log_clean(server, offset: int, where: str) -> None:
    assert server["process"].poll() is None, f"{where}: the server stopped:\n{log_since(server, offset)[-4000:]}"
    new = log_since(server, offset)
    failure = LOG_FAILURE.search(new)
    if failure is not None:
        start = new.rfind("\n", 0, failure.start()) + 1
        excerpt = "\n".join(line[:600] + (" [...]" if len(line) > 600 else "")
                             for line in new[start:].splitlines()[:30])
        pytest.fail(f"{where}: a failure in the server log:\n{excerpt}")


def call(method: str, url: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, str]:
    """(status, body text) of one request, which must be answered within TIMEOUT seconds."""
    started = time.monotonic()
    try:
        status, text = http(method, url, body, headers, timeout=TIMEOUT)
    except OSError as error:  # a timeout, a reset connection
        pytest.fail(f"no answer to {url} within {TIMEOUT} s: {type(error).__name__}: {error}")
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT, f"{url} answered {status} after {elapsed:.1f} s"
    return status, text


def short(text: str, limit: int = 70) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wait_for(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


@contextmanager
def outcome(name: str, channel: str) -> Iterator[Dict[str, object]]:
    """What one (item, channel) got, for the report, also when an assertion fails:
    the test fills in "status" and "answer"."""
    seen: Dict[str, object] = {}
    failed = True
    try:
        yield seen
        failed = False
    finally:
        status, answer = seen.get("status", "no answer"), str(seen.get("answer") or "")
        OUTCOMES[(name, channel)] = f"{status}" + (f": {short(answer)}" if answer else "") + (
            "  [FAILED]" if failed else "")


CASES = [pytest.param(name, payload, id=slug(name)) for name, payload in CORPUS]


# --- REST ---------------------------------------------------------------------------
def rest_body(sender: str, payload: Payload) -> bytes:
    """A JSON body; bytes payloads raw (invalid UTF-8) inside an otherwise valid body."""
    if isinstance(payload, bytes):
        head = json.dumps({"sender": sender, "message": "@@PAYLOAD@@"}).encode("utf-8")
        return head.replace(b"@@PAYLOAD@@", payload.replace(b"\\", b"\\\\").replace(b'"', b'\\"'))
    try:
        return json.dumps({"sender": sender, "message": payload}, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only as a JSON escape ("\ud800")
        return json.dumps({"sender": sender, "message": payload}).encode("utf-8")


def rest_say(server, body: bytes, where: str, seen: Dict[str, object]) -> Tuple[int, Optional[List[Dict]]]:
    """POST a body to the REST webhook: (status, the replies if 200), checked clean."""
    status, text = call("POST", f"{server['url']}/webhooks/rest/webhook", body,
                           {"Content-Type": "application/json"})
    seen.update(status=status, answer=text)
    assert 200 <= status < 500 and status not in range(201, 400), f"{where}: {status} {text[:1000]!r}"
    assert_clean(text, where)
    if status != 200:
        return status, None
    replies = json.loads(text)
    assert isinstance(replies, list), f"{where}: not a list of replies: {text[:1000]!r}"
    seen["answer"] = " / ".join(texts_of(replies)) or text
    assert_clean(json.dumps(replies, ensure_ascii=False), where)
    return status, replies


def texts_of(replies: List[Dict]) -> List[str]:
    return [r["text"] for r in replies if isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"].strip()]


@pytest.mark.parametrize("name,payload", CASES)
def test_rest(server, name, payload):
    where, offset = f"REST, {name!r}", log_size(server)
    sender = f"bad-rest-{slug(name)}-{secrets.token_hex(3)}"
    with outcome(name, "rest") as seen:
        status, replies = rest_say(server, rest_body(sender, payload), where, seen)
        assert_log_clean(server, offset, where)
        if replies is not None and name not in EMPTYISH:
            assert texts_of(replies), f"{where}: 200 without an answer: {replies!r}"


@pytest.mark.parametrize("name,body", [pytest.param(n, b, id=slug(n)) for n, b in MALFORMED_REST_BODIES])
def test_rest_malformed_body(server, name, body):
    """Not a well-formed request: a clean 4xx, or 200 with an answer (which, recorded)."""
    where, offset = f"REST body {name!r}", log_size(server)
    with outcome(name, "rest (malformed body)") as seen:
        status, replies = rest_say(server, body, where, seen)
        assert_log_clean(server, offset, where)
        if replies is not None:
            assert texts_of(replies), f"{where}: 200 without an answer: {replies!r}"


# --- WeChat Official Account, plaintext mode ------------------------------------------
def cdata(text: str) -> str:
    """``text`` inside CDATA as WeChat writes it: a "]]>" in it split across two sections."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def wechat_body(user: str, payload: Payload, msg_id: int) -> bytes:
    xml = text_xml(user, "@@PAYLOAD@@", msg_id).encode("utf-8")
    raw = payload if isinstance(payload, bytes) else cdata(payload).encode("utf-8", "surrogatepass")
    return xml.replace(b"@@PAYLOAD@@", raw)


def wechat_say(server, user: str, body: bytes, where: str, seen: Dict[str, object]) -> Tuple[int, str]:
    """POST a signed message: (status, the passive reply's text; "" for "success" or a 4xx)."""
    url = f"{server['url']}/webhooks/wechat/webhook?{urlencode(plain_params())}"
    status, text = call("POST", url, body, {"Content-Type": "text/xml"})
    seen.update(status=status, answer=text)
    assert 200 <= status < 500 and status not in range(201, 400), f"{where}: {status} {text[:1000]!r}"
    assert_clean(text, where)
    if status != 200 or text == "success":
        return status, ""
    content = xmltodict.parse(text)["xml"]["Content"] or ""
    seen["answer"] = content
    assert_clean(content, where)
    return status, content


def later_answer(texts: Callable[[], List[str]], server, offset: int, missing: str, where: str) -> str:
    """An answer that arrives through a web API stand-in: waited for (``missing``
    if it does not come within TIMEOUT), all its parts joined, checked clean."""
    assert wait_for(texts), f"{missing} within {TIMEOUT} s:\n{log_since(server, offset)[-4000:]}"
    time.sleep(0.5)  # the other parts of a long answer
    answer = "\n".join(texts())
    assert_clean(answer, where)
    return answer


@pytest.mark.parametrize("name,payload", CASES)
def test_wechat(server, name, payload):
    where, offset, apis = f"WeChat, {name!r}", log_size(server), server["apis"]
    user = f"oBad_{slug(name)[:40]}_{secrets.token_hex(3)}"
    with outcome(name, "wechat") as seen:
        status, answer = wechat_say(server, user, wechat_body(user, payload, secrets.randbelow(10**18)), where, seen)
        if status == 200 and not answer and name not in EMPTYISH:
            # "success": a slow answer follows through the customer-service API
            seen["answer"] = f"success, then nothing through the API within {TIMEOUT:.0f} s"
            answer = later_answer(lambda: apis.wechat_texts(user), server, offset,
                                  f"{where}: 'success' but no answer through the API", where + " (through the API)")
            seen["answer"] = "success, then through the API: " + answer
        elif status == 200 and not answer:
            seen["answer"] = "success (nothing to answer)"
        assert_log_clean(server, offset, where)
        if status == 200 and name not in EMPTYISH:
            assert answer.strip(), f"{where}: 200 without an answer"


# --- Slack ----------------------------------------------------------------------------
def slack_body(user: str, channel: str, payload: Payload, event_id: str) -> Tuple[bytes, Dict[str, str]]:
    if isinstance(payload, bytes):
        event = json.dumps(slack_event(user, channel, "@@PAYLOAD@@", event_id)).encode("utf-8")
        raw = event.replace(b"@@PAYLOAD@@", payload.replace(b"\\", b"\\\\").replace(b'"', b'\\"'))
        return slack_request({}, raw=raw)
    return slack_request(slack_event(user, channel, payload, event_id))


@pytest.mark.parametrize("name,payload", CASES)
def test_slack(server, name, payload):
    where, offset, apis = f"Slack, {name!r}", log_size(server), server["apis"]
    user, channel = "U" + secrets.token_hex(5).upper(), "D" + secrets.token_hex(5).upper()
    data, headers = slack_body(user, channel, payload, "Ev" + secrets.token_hex(6).upper())
    with outcome(name, "slack") as seen:
        status, text = call("POST", f"{server['url']}/webhooks/slack/webhook", data, headers)
        seen.update(status=status, answer=text)
        assert 200 <= status < 500 and status not in range(201, 400), \
            f"{where}: {status} {text[:1000]!r}\n{log_since(server, offset)[-4000:]}"
        assert_clean(text, where)
        if status == 200 and name not in EMPTYISH:
            seen["answer"] = f"{text!r}, then nothing posted within {TIMEOUT:.0f} s"
            answer = later_answer(lambda: apis.slack_texts(channel), server, offset,
                                  f"{where}: accepted, but no answer posted", where + " (posted)")
            seen["answer"] = "posted: " + answer
            assert answer.strip(), f"{where}: an empty answer posted"
        elif status == 200:
            time.sleep(1.0)  # whatever it triggers, let it happen before the log is checked
            seen["answer"] = f"{text!r}, posted: " + ("\n".join(apis.slack_texts(channel)) or "nothing")
        assert_log_clean(server, offset, where)


# --- afterwards -----------------------------------------------------------------------
def test_the_server_survived_the_corpus_and_still_answers(server):
    assert server["process"].poll() is None, "the server stopped"
    where = "after the corpus"
    status, replies = rest_say(server, json.dumps({"sender": "after-" + secrets.token_hex(3),
                                                    "message": "hello"}).encode(), where, {})
    assert status == 200 and any("welcome to Example Shop" in t for t in texts_of(replies)), replies
    user = "oAfter_" + secrets.token_hex(4)
    status, answer = wechat_say(server, user, text_xml(user, "你好", secrets.randbelow(10**18)).encode(), where, {})
    if status == 200 and not answer:
        wait_for(lambda: server["apis"].wechat_texts(user))
        answer = "\n".join(server["apis"].wechat_texts(user))
    assert status == 200 and "欢迎光临示例商城" in answer, (status, answer)
    slack_user, channel = "UAFTER" + secrets.token_hex(3).upper(), "DAFTER" + secrets.token_hex(3).upper()
    data, headers = slack_request(slack_event(slack_user, channel, "hello", "EvAfter" + secrets.token_hex(4)))
    assert call("POST", f"{server['url']}/webhooks/slack/webhook", data, headers)[0] == 200
    assert wait_for(lambda: any("welcome to Example Shop" in t for t in server["apis"].slack_texts(channel)))
    assert_log_clean(server, 0, "the whole run")
    log = server["log"].read_text(encoding="utf-8", errors="replace")
    for value in SECRET_VALUES:
        assert value not in log, "a secret in the server log"
    print("\n".join(f"{item} | {channel} | {outcome}" for (item, channel), outcome in OUTCOMES.items()))
