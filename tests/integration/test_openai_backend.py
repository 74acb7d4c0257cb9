"""The OpenAI-compatible HTTP backend against a real server on 127.0.0.1:
llama.cpp's server (llama-cpp-python, built by ``make llama-server`` into
.venv-llama) serving the default model's GGUF file."""

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from rasa_gpt_components.generation.backends import OpenAIBackend
from rasa_gpt_components.generation.prompts import build_prompt
from rasa_gpt_components.models import DEFAULT_MODEL, KNOWN_MODELS
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVER_PYTHON = ROOT / ".venv-llama" / "bin" / "python"
PASSAGE = (
    "Orders to Hong Kong and Macau are sent by SF Express and arrive 3-5 working days after "
    "shipping; shipping costs 30 yuan, free when you pay 299 yuan or more."
)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    assert SERVER_PYTHON.exists(), "llama.cpp's server is missing: run `make llama-server` (make test does)."
    port = free_port()
    gguf = KNOWN_MODELS[DEFAULT_MODEL].source_file()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"  # a file: a full pipe would stall the server
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(SERVER_PYTHON), "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(120):
            if process.poll() is not None:
                raise AssertionError("llama.cpp's server exited: " + log_path.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(base + "/models", timeout=1) as response:
                    assert json.loads(response.read())["data"][0]["id"] == "smollm2"
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("llama.cpp's server did not start within 60 s: " + log_path.read_text(errors="replace")[-2000:])
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_server_generates_an_answer(server_url):
    backend = OpenAIBackend(server_url, model="smollm2")
    prompt = build_prompt("How much does shipping to Hong Kong cost?", [PASSAGE], "en", bot_name="Example Shop")
    result = backend.generate(prompt, 48, time.monotonic() + 20)
    assert result.stopped in ("end", "max_tokens"), result
    assert result.text and 0 < result.tokens <= 48
    assert result.seconds < 20


def test_generative_nlg_answers_through_the_server(server_url):
    import asyncio

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from rasa_gpt_components.generation.nlg import GenerativeNLG

    domain = Domain.from_yaml(
        'version: "3.1"\nresponses:\n  utter_generative_fallback:\n  - text: "Sorry, I didn\'t get that."\n'
    )
    config = EndpointConfig(
        type="rasa_gpt_components.GenerativeNLG", knowledge=str(ROOT / "bot" / "knowledge"), backend="openai",
        base_url=server_url, server_model="smollm2", generation_languages=["en"], time_budget=4.5,
    )
    nlg = GenerativeNLG(config, domain)
    tracker = DialogueStateTracker.from_events(
        "http", [ActionExecuted("action_listen"), UserUttered("How much does shipping to Hong Kong cost?")]
    )
    reply = asyncio.run(nlg.generate("utter_generative_fallback", tracker, "test", domain_responses=domain.responses))
    meta = reply["metadata"]["generative"]
    assert meta["tokens"] > 0, meta  # the server wrote an answer (counted by its usage report)
    # the knowledge base has a Hong Kong entry and a Hong Kong and Macau one: both state the fee
    assert meta["passages"][0] in ("ship_hong_kong_en", "shipping_hk_macau_en"), meta
    assert meta["ms"] < 4600, meta
    assert meta["outcome"] in ("generated", "passage"), meta  # the answer, or the sure passage it failed against
    assert reply["text"] and "didn't get that" not in reply["text"]


def test_deadline_is_kept_while_the_server_is_still_writing(server_url):
    backend = OpenAIBackend(server_url, model="smollm2")
    prompt = build_prompt("Tell me everything about shipping, in detail.", [PASSAGE] * 3, "en")
    started = time.monotonic()
    result = backend.generate(prompt, 300, started + 0.3)
    assert result.stopped == "deadline", result
    assert time.monotonic() - started < 0.4


def test_server_down_is_an_error_not_an_exception():
    backend = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1")
    started = time.monotonic()
    result = backend.generate(build_prompt("hi", [], "en"), 16, started + 5)
    assert result.stopped == "error" and result.text == ""
    assert time.monotonic() - started < 1.0
