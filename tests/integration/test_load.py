"""rasa-gpt bench load against a real `rasa run --enable-api` of the reference bot
on 127.0.0.1: a small load (4 conversations x 5 turns, Chinese and English, with
knowledge-base turns) answered without an error, every message and reply in the
tracker store once and in order, and the script's labels right for this bot."""

import json
from typing import Any, Dict, List

import pytest

from rasa_gpt_components.cli import main
from tests.integration import rasa_server
from tests.integration.rasa_server import http

pytestmark = pytest.mark.integration

TOKEN = "load-test-token"


@pytest.fixture(scope="module")
def api_server(trained_model, shop, tmp_path_factory):
    """The bot with the REST channel only and the HTTP API behind a token."""
    folder = tmp_path_factory.mktemp("load")
    (folder / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    with rasa_server.running(trained_model, shop / "endpoints.yml", folder / "credentials.yml", folder / "rasa.log",
                             extra_args=("--enable-api", "--auth-token", TOKEN)) as server:
        yield server


def _tracker_events(server, sender: str) -> List[Dict[str, Any]]:
    status, body = http("GET", f"{server.url}/conversations/{sender}/tracker?include_events=ALL&token={TOKEN}")
    assert status == 200, body
    return json.loads(body)["events"]


def _answered_by_generative_nlg(event: Dict[str, Any]) -> bool:
    metadata = event.get("metadata") or {}
    return "generative" in metadata or "generative" in (metadata.get("metadata") or {})


def test_a_small_load_through_the_real_bot(api_server, tmp_path):
    out = tmp_path / "load"
    code = main(["bench", "load", "--url", api_server.url, "--auth-token", TOKEN, "--conversations", "4",
                 "--turns", "5", "--seed", "3", "--out", str(out)])
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and data["passed"] is True, (out / "report.md").read_text(encoding="utf-8")
    assert data["errors"]["total"] == 0
    assert data["turns"]["sent"] == data["turns"]["answered"] == 20 and data["turns"]["generative"] > 0
    for side in ("user", "bot"):
        tracker = data["tracker"][side]
        assert (tracker["lost"], tracker["duplicated"], tracker["unexpected"], tracker["out_of_order"]) == (0, 0, 0, 0)
        assert tracker["stored"] == tracker["expected"]
    assert data["tracker"]["user"]["expected"] == 20 and data["tracker"]["conversations"] == 4
    assert data["tracker"]["bot"]["expected"] >= 20
    assert data["latency_ms"]["non_generative"]["p95"] <= 1500 and data["latency_ms"]["generative"]["turns"] > 0
    assert set(data["latency_ms_by_language"]) == {"zh", "en"}
    assert data["throughput_turns_per_s"] > 0 and data["machine"]["cores"]
    assert "**Result: PASS**" in (out / "report.md").read_text(encoding="utf-8")

    # the labels hold for this bot: a turn is answered by GenerativeNLG exactly when the script says generative
    turns = json.loads((out / "turns.json").read_text(encoding="utf-8"))
    for sender in {turn["sender"] for turn in turns}:
        mine = [turn for turn in turns if turn["sender"] == sender]
        answered_by_nlg: List[bool] = []
        for event in _tracker_events(api_server, sender):
            if event["event"] == "user":
                answered_by_nlg.append(False)
            elif event["event"] == "bot" and _answered_by_generative_nlg(event):
                answered_by_nlg[-1] = True
        assert answered_by_nlg == [turn["generative"] for turn in mine], [turn["text"] for turn in mine]


def test_without_the_token_the_command_stops_before_sending_anything(api_server, tmp_path, capsys):
    out = tmp_path / "no-token"
    assert main(["bench", "load", "--url", api_server.url, "--conversations", "1", "--turns", "1",
                 "--out", str(out)]) == 2
    assert "--auth-token" in capsys.readouterr().err and not out.exists()
