"""``rasa-gpt bench summary``: one Markdown table over many intent reports.

    rasa-gpt bench summary reports/banking77-10shot reports/clinc150-full ...

Every row is one system of one ``report.json``, with the options that differ
from the defaults, so docs/benchmarks.md is made from the reports, not typed.
"""

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List

from rasa_gpt_components.bench.report import markdown_table

COLUMNS = [
    ("accuracy", "accuracy", 100, 1),
    ("macro_f1", "macro F1", 100, 1),
    ("train_seconds", "train s", 1, 1),
    ("predict_ms_p50", "p50 ms", 1, 1),
    ("predict_ms_p95", "p95 ms", 1, 1),
    ("peak_rss_mb", "peak RSS MB", 1, 0),
    ("ece", "ECE", 1, 3),
    ("oos_recall", "OOS recall", 100, 1),
    ("oos_precision", "OOS precision", 100, 1),
]


def _options(system: Dict[str, Any]) -> str:
    """Non-default GPTIntentClassifier options of a system ('' for DIET)."""
    for component in system.get("pipeline", []):
        if component.get("name", "").endswith("GPTIntentClassifier"):
            extra = {k: v for k, v in component.items() if k not in ("name", "random_seed")}
            return ", ".join(f"{k}={v}" for k, v in extra.items())
    return ""


def summary_rows(folders: List[Path]) -> List[List[Any]]:
    """Table rows for every system of every report in ``folders``."""
    rows = []
    for folder in folders:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        shots = f"{data['shots']}-shot" if data["shots"] else "full"
        for name, system in data["systems"].items():
            cells: List[Any] = [folder.name, data["dataset"], shots, name, _options(system)]
            for key, _, factor, digits in COLUMNS:
                value = system.get(key)
                cells.append("-" if value is None else f"{value * factor:.{digits}f}")
            rows.append(cells)
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the table (Markdown) to standard output."""
    header = ["run", "dataset", "data", "system", "options"] + [title for _, title, _, _ in COLUMNS]
    print(markdown_table(header, summary_rows([Path(f) for f in args.reports])))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench summary``."""
    parser.add_argument("reports", nargs="+", help="report folders (each with report.json)")
