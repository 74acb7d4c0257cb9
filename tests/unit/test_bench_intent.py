"""`rasa-gpt bench intent` end to end on a tiny data set, a tiny GPT-2 and a short DIET."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import build_tiny_gpt2
from tests.fixtures.nlu_project import INTENTS


def write_banking77_like(root: Path) -> Path:
    folder = root / "banking77"
    folder.mkdir(parents=True)
    rows = [(text, intent) for intent, texts in INTENTS.items() for text in texts]
    for name, part in (("train.csv", rows), ("test.csv", rows[::2])):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "category"])
            writer.writerows(part)
    return root


def test_bench_writes_both_systems_reports(tmp_path):
    data = write_banking77_like(tmp_path / "datasets")
    model = build_tiny_gpt2(tmp_path / "model", n_layer=2)
    out = tmp_path / "report"
    options = json.dumps({"features": ["gpt"], "layer": 2, "calibration_folds": 2})
    result = subprocess.run(
        [sys.executable, "-m", "rasa_gpt_components.cli", "bench", "intent",
         "--dataset", "banking77", "--datasets", str(data), "--model", str(model),
         "--gpt-options", options, "--shots", "4", "--baseline", "diet",
         "--diet-epochs", "5", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, RASA_CACHE_DIRECTORY=str(tmp_path / "rasa-cache")),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "banking77" and report["shots"] == 4 and report["cores"] >= 1
    assert set(report["systems"]) == {"gpt", "diet", "lexical"}
    for system in report["systems"].values():
        for key in ("accuracy", "macro_f1", "train_seconds", "predict_ms_p50", "predict_ms_p95", "peak_rss_mb"):
            assert isinstance(system[key], (int, float)), key
        assert 0.0 <= system["accuracy"] <= 1.0
        assert system["predict_ms_p50"] <= system["predict_ms_p95"]
        assert "oos_recall" not in system  # no out-of-scope data in this set
        assert set(system["rarest_f1"]) == set(INTENTS)  # fewer than ten intents: all of them
    assert report["train_size"] == 12 and report["test_size"] == 9
    comparison = report["comparison"]
    lexical_errors = 1 - report["systems"]["lexical"]["accuracy"]
    gpt_errors = 1 - report["systems"]["gpt"]["accuracy"]
    if lexical_errors > 0:
        assert abs(comparison["error_reduction_over_lexical"] - (1 - gpt_errors / lexical_errors)) < 1e-3
    assert comparison["error_reduction_met"] == (comparison["error_reduction_over_lexical"] >= 0.25)
    markdown = (out / "report.md").read_text()
    assert "| gpt |" in markdown and "| diet |" in markdown and "| lexical |" in markdown
    assert "fewest training examples" in markdown
    assert (out / "reliability.png").stat().st_size > 1000


def test_summary_has_one_row_per_system_with_its_options(tmp_path):
    import json

    from rasa_gpt_components.bench.summary import summary_rows

    gpt = {"accuracy": 0.9231, "train_seconds": 103.14, "oos_recall": None,
           "pipeline": [{"name": "WhitespaceTokenizer"},
                        {"name": "rasa_gpt_components.GPTIntentClassifier", "compute": "int8", "random_seed": 0}]}
    diet = {"accuracy": 0.6578, "train_seconds": 496.2, "pipeline": [{"name": "DIETClassifier"}]}
    folder = tmp_path / "banking77-10shot"
    folder.mkdir()
    (folder / "report.json").write_text(
        json.dumps({"dataset": "banking77", "shots": 10, "systems": {"gpt": gpt, "diet": diet}})
    )
    rows = summary_rows([folder])
    assert [row[:5] for row in rows] == [
        ["banking77-10shot", "banking77", "10-shot", "gpt", "compute=int8"],
        ["banking77-10shot", "banking77", "10-shot", "diet", ""],
    ]
    assert rows[0][5:8] == ["92.3", "-", "103.1"] and rows[1][5] == "65.8"


def test_both_systems_get_the_same_fallback_classifier():
    from rasa_gpt_components.bench.pipelines import diet_pipeline, gpt_pipeline

    for ambiguity, expected in ((None, 0.1), (0.0, 0.0)):
        gpt = gpt_pipeline("en", fallback=True, ambiguity_threshold=ambiguity)[-1]
        diet = diet_pipeline("en", fallback=True, ambiguity_threshold=ambiguity)[-1]
        assert gpt == diet == {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": expected}
    assert all(step["name"] != "FallbackClassifier" for step in gpt_pipeline("en", fallback=False))


def write_clinc_like(root: Path) -> Path:
    folder = root / "clinc150"
    folder.mkdir(parents=True)
    rows = [[text, intent] for intent, texts in INTENTS.items() for text in texts]
    oos = [["what's the weather tomorrow", "oos"], ["tell me a joke", "oos"], ["who won the match", "oos"],
           ["sing me a song", "oos"]]
    data = {"train": rows, "val": rows[:3], "test": rows[::2], "oos_train": oos[:3], "oos_val": oos[3:],
            "oos_test": [["how tall is everest", "oos"], ["play some jazz", "oos"]]}
    (folder / "data_full.json").write_text(json.dumps(data), encoding="utf-8")
    return root


def run_bench(tmp_path: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    model = build_tiny_gpt2(tmp_path / "model", n_layer=2)
    options = json.dumps({"features": ["gpt"], "layer": 2, "calibration_folds": 2})
    return subprocess.run(
        [sys.executable, "-m", "rasa_gpt_components.cli", "bench", "intent", "--datasets", str(data),
         "--model", str(model), "--gpt-options", options, "--out", str(tmp_path / "report"), *extra],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, RASA_CACHE_DIRECTORY=str(tmp_path / "rasa-cache")),
    )


def test_oos_train_adds_the_sets_out_of_scope_examples_as_an_intent_for_every_system(tmp_path):
    data = write_clinc_like(tmp_path / "datasets")
    result = run_bench(tmp_path, data, "--dataset", "clinc150", "--oos-train")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["train_size"] == 18 + 3 and report["oos_train"] == 3
    assert report["intents"] == len(INTENTS) and report["test_size"] == 9 + 2
    for system in report["systems"].values():
        assert "out_of_scope" not in system["rarest_f1"]  # not an intent of the test
        assert 0.0 <= system["oos_recall"] <= 1.0
    assert "3 out-of-scope training examples" in (tmp_path / "report" / "report.md").read_text()


def test_oos_train_on_a_set_without_out_of_scope_examples_is_a_clear_error(tmp_path):
    data = write_banking77_like(tmp_path / "datasets")
    result = run_bench(tmp_path, data, "--dataset", "banking77", "--oos-train")
    assert result.returncode != 0
    assert "banking77 has no out-of-scope training examples" in result.stderr


def test_typos_give_every_system_the_same_misspelt_messages_and_say_so(tmp_path):
    data = write_banking77_like(tmp_path / "datasets")
    result = run_bench(tmp_path, data, "--dataset", "banking77", "--typos")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["typos"].startswith("one seeded typo") and report["test_size"] == 9
    assert set(report["systems"]) == {"gpt", "lexical"}
    assert "one seeded typo in one word" in (tmp_path / "report" / "report.md").read_text()
