"""``rasa-gpt bench sentiment`` end to end on tiny data sets made in the test."""

import json

from rasa_gpt_components.cli import main
from tests.conftest import build_tiny_gpt2
from tests.fixtures.sentiment_data import write_datasets


def test_bench_writes_both_reports_with_the_baseline(tmp_path):
    model = build_tiny_gpt2(tmp_path / "model", n_layer=2)
    datasets = write_datasets(tmp_path / "datasets")
    options = {"model": str(model), "layer": 2, "max_length": 32, "calibration_folds": 3}
    out = tmp_path / "report"
    code = main(
        ["bench", "sentiment", "--datasets", str(datasets), "--options", json.dumps(options),
         "--latency-messages", "3", "--out", str(out)]
    )
    assert code == 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(data["sets"]) == {"zh_shopping", "en_airline"}
    english = data["sets"]["en_airline"]
    assert english["labels"] == ["negative", "neutral", "positive"]
    assert english["test_size"] == 18  # 20 % of 90, stratified
    for result in data["sets"].values():
        assert set(result["systems"]) == {"baseline", "gpt"}
        assert result["systems"]["gpt"]["accuracy"] >= 0.9  # separable data
        assert {"error_reduction", "accuracy", "added_ms_p50_beside_intent_classifier"} <= set(result["comparison"])
        gpt = result["systems"]["gpt"]
        assert 0 < gpt["shared_ms_p50"] <= gpt["shared_ms_p95"] and "shared_ms_p50" not in result["systems"]["baseline"]
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "baseline" in markdown and "rasa-gpt bench sentiment" in markdown and "target" in markdown
