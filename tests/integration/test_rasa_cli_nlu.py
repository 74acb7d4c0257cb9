"""GPTIntentClassifier with the real default model through Rasa's own command line:
`rasa train nlu`, `rasa test nlu` (cross-validation too), `rasa shell nlu` on a pty,
and `rasa run --enable-api` answering a real HTTP request on 127.0.0.1."""

import json
import os
import pty
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import free_port, read_until
from tests.fixtures.nlu_project import INTENTS as FEW

# twelve examples an intent, so each of 3 cross-validation folds trains on eight
INTENTS = {
    "greet": FEW["greet"] + ["hello there", "good evening", "hi!", "早上好", "嗨", "晚上好"],
    "order_status": FEW["order_status"]
    + ["when will my order arrive", "is my delivery on the way", "track my parcel",
       "我的快递到哪了", "订单什么时候发货", "物流信息查不到"],
    "refund": FEW["refund"]
    + ["how do I get my money back", "I would like to return this item", "refund please",
       "申请退款", "退款什么时候到账", "这个商品我想退货"],
}

pytestmark = pytest.mark.integration

RASA = str(Path(sys.executable).with_name("rasa"))
CONFIG = """recipe: default.v1
assistant_id: cli-test
language: zh
pipeline:
  - name: JiebaTokenizer
  - name: rasa_gpt_components.GPTIntentClassifier
    show_progress: false
  - name: FallbackClassifier
    threshold: 0.3
policies: []
"""


def _rasa(args, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [RASA, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-project")
    (root / "data").mkdir()
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in INTENTS.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {e}" for e in examples]
    (root / "data" / "nlu.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "config.yml").write_text(CONFIG, encoding="utf-8")
    (root / "domain.yml").write_text('version: "3.1"\n', encoding="utf-8")
    _rasa(["train", "nlu", "--out", "models", "--fixed-model-name", "nlu"], root)
    assert (root / "models" / "nlu.tar.gz").is_file()
    return root


def test_rasa_test_nlu_with_cross_validation(project):
    _rasa(["test", "nlu", "--cross-validation", "--folds", "3", "--out", "results"], project)
    report = json.loads((project / "results" / "intent_report.json").read_text(encoding="utf-8"))
    assert set(INTENTS) <= set(report)
    assert report["accuracy"] >= 0.7, report["accuracy"]  # chance is 0.33


def test_rasa_shell_nlu_prints_the_parse(project):
    main, child = pty.openpty()
    process = subprocess.Popen(
        [RASA, "shell", "nlu", "--model", "models/nlu.tar.gz"],
        cwd=project, stdin=child, stdout=child, stderr=child, close_fds=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="200"),
    )
    os.close(child)
    try:
        read_until(main, r"Next message:", timeout=300)
        os.write(main, "退货退款怎么办\r".encode("utf-8"))
        seen = read_until(main, r'"intent_ranking"', timeout=60)
        assert '"refund"' in seen
        os.write(main, b"\x04")  # `rasa shell nlu` has no /stop: end of input ends it
        read_until(main, r"Wrapping up", timeout=60)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)


def test_rasa_run_answers_model_parse_over_http(project):
    port = free_port()
    process = subprocess.Popen(
        [RASA, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port), "--model", "models/nlu.tar.gz"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/model/parse",
            data=json.dumps({"text": "where is my order 12345"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            parsed = json.loads(response.read())
        assert parsed["intent"]["name"] == "order_status", parsed["intent"]
        assert parsed["intent_ranking"][0]["name"] == "order_status"
    finally:
        process.terminate()
        process.wait(timeout=60)
