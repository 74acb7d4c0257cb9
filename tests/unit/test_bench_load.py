"""rasa-gpt bench load: the scripts, the tracker comparison, the report, and whole
runs against a stand-in for `rasa run --enable-api` on 127.0.0.1 that loses,
duplicates, fails and delays messages on demand."""

import json
import re
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, urlparse

from rasa_gpt_components.bench.load import (
    ORDERS,
    TurnResult,
    build_scripts,
    check_conversation,
    checks,
    compare,
    summarize,
    total_check,
    turn_url,
)
from rasa_gpt_components.cli import main
from tests.fixtures.local_server import JSONHandler, LocalServer


# --- scripts ---------------------------------------------------------------------
def test_scripts_are_reproducible_bilingual_and_never_trap_the_conversation():
    scripts = build_scripts(conversations=20, turns=8, seed=7)
    assert scripts == build_scripts(conversations=20, turns=8, seed=7)
    assert scripts != build_scripts(conversations=20, turns=8, seed=8)
    assert len(scripts) == 20 and all(len(script) == 8 for script in scripts)
    assert [script[0].language for script in scripts[:4]] == ["zh", "en", "zh", "en"]
    turns = [turn for script in scripts for turn in script]
    for script in scripts:
        assert {turn.language for turn in script} == {script[0].language}
        assert script[0].kind == "greet" and script[-1].kind == "goodbye"
        # the fallback policy hands over to a human after two generative answers in a row
        assert not any(a.generative and b.generative for a, b in zip(script, script[1:]))
    assert {turn.kind for turn in turns} >= {"order", "kb", "bot", "recommend", "thanks"}
    assert {turn.generative for turn in turns} == {True, False}
    assert all(turn.generative == (turn.kind == "kb") for turn in turns)
    orders = {number for turn in turns for number in re.findall(r"ES\d{10}", turn.text)}
    assert orders and orders <= set(ORDERS)
    # nothing that starts the refund or the address form
    assert not any(re.search(r"退款|地址|refund|address", turn.text, re.I) for turn in turns)


def test_one_turn_conversations_and_one_language():
    assert [[t.kind for t in s] for s in build_scripts(3, 1, 0)] == [["greet"]] * 3
    assert {t.language for s in build_scripts(4, 3, 0, languages=["en"]) for t in s} == {"en"}


def test_conversations_round_robin_over_instances_and_turns_alternate_when_spread():
    urls = ["http://a", "http://b"]
    assert [turn_url(urls, c, 0, False) for c in range(4)] == ["http://a", "http://b", "http://a", "http://b"]
    assert [turn_url(urls, 1, t, False) for t in range(3)] == ["http://b"] * 3
    assert [turn_url(urls, 1, t, True) for t in range(3)] == ["http://b", "http://a", "http://b"]


# --- the tracker comparison --------------------------------------------------------
CLEAN = {"expected": 3, "stored": 3, "lost": 0, "duplicated": 0, "unexpected": 0, "out_of_order": 0}


def test_compare_finds_lost_duplicated_unexpected_and_reordered_messages():
    sent = ["hi", "where is ES2611210006?", "thanks"]
    assert compare(sent, sent) == CLEAN
    assert compare(sent, ["hi", "thanks"])["lost"] == 1
    duplicated = compare(sent, ["hi", "where is ES2611210006?", "where is ES2611210006?", "thanks"])
    assert (duplicated["duplicated"], duplicated["lost"], duplicated["out_of_order"]) == (1, 0, 0)
    assert compare(sent, sent + ["from someone else"])["unexpected"] == 1
    swapped = compare(sent, ["hi", "thanks", "where is ES2611210006?"])
    assert (swapped["out_of_order"], swapped["lost"], swapped["duplicated"]) == (1, 0, 0)
    assert compare(sent, list(reversed(sent)))["out_of_order"] == 2
    # a text sent twice is expected twice, and in order
    assert compare(["thanks", "bye", "thanks"], ["thanks", "bye", "thanks"]) == CLEAN
    assert compare(["thanks", "bye", "thanks"], ["thanks", "bye"])["lost"] == 1
    assert compare(["thanks", "bye", "thanks"], ["bye", "thanks", "thanks"])["out_of_order"] == 1


def _events(*pairs) -> List[Dict[str, Any]]:
    """Tracker events as the HTTP API returns them, with Rasa's bookkeeping in between."""
    events: List[Dict[str, Any]] = [{"event": "action", "name": "action_session_start"},
                                    {"event": "session_started"}, {"event": "action", "name": "action_listen"}]
    for kind, text in pairs:
        events.append({"event": kind, "text": text, "metadata": {}})
        if kind == "bot":
            events.append({"event": "action", "name": "action_listen"})
    return events


def _result(index: int, text: str, replies: List[str], generative: bool = False, error: Optional[str] = None,
            ms: float = 100.0, status: Optional[int] = 200, language: str = "en") -> TurnResult:
    return TurnResult("s1", index, "http://a", "kb" if generative else "order", language, generative, text,
                      ms=ms, status=status, error=error, replies=replies)


def test_a_conversation_against_its_tracker_events():
    results = [_result(0, "hi", ["Hello!"]), _result(1, "where is ES2611210006?", ["Shipped.", "By ZTO."])]
    stored = _events(("user", "hi"), ("bot", "Hello!"), ("user", "where is ES2611210006?"),
                     ("bot", "Shipped."), ("bot", "By ZTO."))
    check = check_conversation(results, stored)
    assert check["user"] == dict(CLEAN, expected=2, stored=2)
    assert check["bot"] == dict(CLEAN, expected=3, stored=3)
    reordered = _events(("user", "hi"), ("bot", "Hello!"), ("user", "where is ES2611210006?"),
                        ("bot", "By ZTO."), ("bot", "Shipped."))
    assert check_conversation(results, reordered)["bot"]["out_of_order"] == 1
    lost_reply = _events(("user", "hi"), ("user", "where is ES2611210006?"), ("bot", "Shipped."), ("bot", "By ZTO."))
    assert check_conversation(results, lost_reply)["bot"]["lost"] == 1
    totals = total_check({"s1": check, "s2": check_conversation(results, lost_reply)})
    assert totals["conversations"] == 2 and totals["user"]["expected"] == 4 and totals["bot"]["lost"] == 1
    assert list(totals["problems"]) == ["s2"]


# --- the report's numbers -------------------------------------------------------------
def test_summary_latency_percentiles_errors_and_checks():
    results = [_result(i, f"q{i}", ["a"], ms=float(10 * (i + 1))) for i in range(10)]
    results += [_result(10 + i, f"kb{i}", ["a"], generative=True, ms=1000.0 + i, language="zh") for i in range(4)]
    results += [_result(20, "x", [], error="timeout", status=None), _result(21, "y", [], error="http", status=500),
                _result(22, "z", [], error="empty"), _result(23, "w", [], error="http", status=503)]
    data = summarize(results, elapsed=2.0)
    assert data["turns"] == {"sent": 18, "answered": 14, "generative": 4, "non_generative": 14}
    assert data["throughput_turns_per_s"] == 7.0
    non_generative = data["latency_ms"]["non_generative"]
    assert non_generative["turns"] == 10 and non_generative["p50"] == 55.0 and non_generative["max"] == 100.0
    assert non_generative["p50"] < non_generative["p95"] <= non_generative["p99"] <= 100.0
    assert data["latency_ms"]["generative"]["p50"] == 1001.5 and data["latency_ms"]["all"]["turns"] == 14
    assert set(data["latency_ms_by_language"]) == {"en", "zh"} and data["latency_ms_by_kind"]["kb"]["turns"] == 4
    assert data["errors"] == {"http": 2, "timeout": 1, "connection": 0, "empty": 1, "invalid": 0, "total": 4,
                              "http_status": {"500": 1, "503": 1}}
    data["tracker"] = total_check({"s1": check_conversation(results[:2], _events(("user", "q0"), ("bot", "a"),
                                                                                  ("user", "q1"), ("bot", "a")))})
    targets = {"p95_ms": 1500.0, "p95_ms_generative": None, "min_throughput": None, "max_errors": 0}
    result = {c["check"]: c["passed"] for c in checks(data, targets)}
    assert result["non-generative turns p95 ms"] and not result["errors"]
    assert "generative turns p95 ms" not in result and result["tracker: user messages lost"]
    strict = {c["check"]: c["passed"] for c in checks(data, dict(targets, p95_ms_generative=500.0, max_errors=4))}
    assert not strict["generative turns p95 ms"] and strict["errors"]


# --- whole runs against a stand-in bot ---------------------------------------------------
class FakeRasa(LocalServer):
    """`rasa run --enable-api` as far as the load test sees it: the REST channel
    answers "echo: <text>" and stores user and bot events in ``store`` (several
    instances may share one), the HTTP API reads them back. ``faults`` maps a
    message text to what goes wrong with it: drop (not stored), duplicate (stored
    twice), 500, empty (no reply), slow (answered after 1 s)."""

    def __init__(self, store: Dict[str, List[Dict[str, Any]]], api: bool = True, token: Optional[str] = None,
                 faults: Optional[Dict[str, str]] = None) -> None:
        self.store, self.api, self.token, self.faults = store, api, token, faults or {}
        self.requests = 0
        super().__init__(self._handler())

    def _handler(self):
        fake = self

        class Handler(JSONHandler):
            def reply(self, status: int, body: Any) -> None:
                self.answer(body, status)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/":
                    return self.reply(200, "Hello from Rasa: 3.6.21")
                match = re.fullmatch(r"/conversations/([^/]+)/tracker", url.path)
                if not fake.api or not (url.path == "/status" or match):
                    return self.reply(404, {"status": "failure", "reason": "not found"})
                if fake.token and parse_qs(url.query).get("token") != [fake.token]:
                    return self.reply(401, {"status": "failure", "reason": "NotAuthenticated"})
                if url.path == "/status":
                    return self.reply(200, {"model_file": "fake.tar.gz"})
                assert parse_qs(url.query).get("include_events") == ["ALL"]
                self.reply(200, {"sender_id": match.group(1), "events": fake.store.get(match.group(1), [])})

            def do_POST(self) -> None:
                assert self.path == "/webhooks/rest/webhook"
                message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sender, text = message["sender"], message["message"]
                fake.requests += 1
                fault = fake.faults.get(text)
                if fault == "500":
                    return self.reply(500, {"error": "boom"})
                events = fake.store.setdefault(sender, [])
                answer = [] if fault == "empty" else [{"recipient_id": sender, "text": f"echo: {text}"}]
                if fault != "drop":
                    events.extend([{"event": "user", "text": text}] * (2 if fault == "duplicate" else 1))
                events.extend({"event": "bot", "text": m["text"]} for m in answer)
                if fault == "slow":
                    time.sleep(1.0)
                self.reply(200, answer)

        return Handler


@contextmanager
def fake_rasas(count: int = 1, **kwargs) -> Iterator[List[FakeRasa]]:
    """``count`` stand-in instances over one shared store."""
    store: Dict[str, List[Dict[str, Any]]] = {}
    fakes = [FakeRasa(store, **kwargs) for _ in range(count)]
    try:
        yield fakes
    finally:
        for fake in fakes:
            fake.close()


def load(out, *options: str) -> int:
    return main(["bench", "load", "--out", str(out), "--conversations", "4", "--turns", "5", "--seed", "1", *options])


def read_report(out) -> Dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_a_clean_run_writes_both_reports_and_passes(tmp_path):
    with fake_rasas() as (fake,):
        assert load(tmp_path / "one", "--url", fake.url) == 0
        assert load(tmp_path / "two", "--url", fake.url) == 0
    data = read_report(tmp_path / "one")
    assert data["benchmark"] == "load" and data["passed"] is True
    assert data["command"].startswith("rasa-gpt bench load --out")
    assert {"cores", "cpu", "memory_gb"} <= set(data["machine"])
    assert data["parameters"]["urls"] == [fake.url] and data["parameters"]["tracker_url"] == fake.url
    assert data["turns"]["sent"] == data["turns"]["answered"] == 20 and data["turns"]["generative"] > 0
    assert data["throughput_turns_per_s"] > 0
    for group in ("all", "non_generative", "generative"):
        assert set(data["latency_ms"][group]) == {"turns", "p50", "p95", "p99", "mean", "max"}
        assert 0 < data["latency_ms"][group]["p50"] <= data["latency_ms"][group]["p99"]
    assert data["errors"]["total"] == 0
    assert data["tracker"]["user"] == dict(CLEAN, expected=20, stored=20)
    assert data["tracker"]["bot"] == dict(CLEAN, expected=20, stored=20)
    assert [c["check"] for c in data["checks"]][:2] == ["non-generative turns p95 ms", "errors"]
    markdown = (tmp_path / "one" / "report.md").read_text(encoding="utf-8")
    assert "**Result: PASS**" in markdown and "| non generative | " in markdown
    # the same seed, the same scripts; new sender ids every run
    first = json.loads((tmp_path / "one" / "turns.json").read_text(encoding="utf-8"))
    second = json.loads((tmp_path / "two" / "turns.json").read_text(encoding="utf-8"))
    assert [t["text"] for t in first] == [t["text"] for t in second]
    assert not {t["sender"] for t in first} & {t["sender"] for t in second}
    assert len({t["sender"] for t in first}) == 4


def test_lost_duplicated_failed_empty_and_slow_turns_are_counted_and_fail_the_run(tmp_path):
    texts = [t.text for script in build_scripts(4, 5, 1) for t in script]
    # texts that appear once in the run, so each fault hits one turn
    once = [text for text in dict.fromkeys(texts) if texts.count(text) == 1]
    faults = dict(zip(once, ["drop", "duplicate", "500", "empty", "slow"]))
    with fake_rasas(faults=faults) as (fake,):
        assert load(tmp_path, "--url", fake.url, "--timeout", "0.5") == 1
    data = read_report(tmp_path)
    assert data["passed"] is False
    assert data["errors"] == {"http": 1, "timeout": 1, "connection": 0, "empty": 1, "invalid": 0, "total": 3,
                              "http_status": {"500": 1}}
    assert data["turns"]["answered"] == 17
    user = data["tracker"]["user"]
    # the failed turn (500) is lost too: it was sent and never stored
    assert (user["lost"], user["duplicated"], user["unexpected"], user["out_of_order"]) == (2, 1, 0, 0)
    # the slow turn's reply was stored but never received
    assert data["tracker"]["bot"]["unexpected"] == 1 and data["tracker"]["bot"]["lost"] == 0
    assert len(data["tracker"]["problems"]) >= 2
    failed = {c["check"] for c in data["checks"] if not c["passed"]}
    assert {"errors", "tracker: user messages lost", "tracker: user messages duplicated"} <= failed
    assert "**Result: FAIL**" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_two_instances_share_the_conversations_and_the_trackers_are_read_from_one(tmp_path):
    with fake_rasas(2) as (first, second):
        assert load(tmp_path, "--url", first.url, "--url", second.url, "--spread-turns",
                    "--tracker-url", second.url) == 0
        assert first.requests == second.requests == 10
    turns = json.loads((tmp_path / "turns.json").read_text(encoding="utf-8"))
    by_sender: Dict[str, List[str]] = {}
    for turn in turns:
        by_sender.setdefault(turn["sender"], []).append(turn["url"])
    assert all(urls[0] != urls[1] and urls[0] == urls[2] for urls in by_sender.values())
    assert read_report(tmp_path)["parameters"]["tracker_url"] == second.url


def test_without_the_http_api_or_its_token_the_command_says_what_to_do(tmp_path, capsys):
    with fake_rasas(api=False) as (fake,):
        assert load(tmp_path / "a", "--url", fake.url) == 2
        assert fake.requests == 0  # nothing sent before the check
    assert "--enable-api" in capsys.readouterr().err
    with fake_rasas(token="s3cret") as (fake,):
        assert load(tmp_path / "b", "--url", fake.url) == 2
        assert "--auth-token" in capsys.readouterr().err
        assert load(tmp_path / "c", "--url", fake.url, "--auth-token", "s3cret") == 0
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert load(tmp_path / "d", "--url", "http://127.0.0.1:9") == 2
    assert "cannot reach" in capsys.readouterr().err
