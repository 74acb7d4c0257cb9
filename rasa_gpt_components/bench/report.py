"""Metrics, machine description and report writing shared by the benchmarks."""

import json
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def machine() -> Dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    import torch

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": False,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, rounded to 0.1."""
    return round(float(np.percentile(np.asarray(values, dtype=float), q)), 1) if values else 0.0


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width confidence bins."""
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += abs(correct[mask].mean() - confidence[mask].mean()) * mask.mean()
    return float(total)


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> List[Dict[str, float]]:
    """Per-bin mean confidence, accuracy and count (for the reliability diagram)."""
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append(
                {
                    "bin": b,
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return rows


def top_confusions(truth: Sequence[str], predicted: Sequence[str], k: int = 15) -> List[List[Any]]:
    """The ``k`` most frequent (true, predicted) mistakes."""
    pairs = Counter((t, p) for t, p in zip(truth, predicted) if t != p)
    return [[t, p, n] for (t, p), n in pairs.most_common(k)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    return "\n".join(lines)


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, UTF-8, keys in insertion order."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def fmt(value: Optional[float], digits: int = 3) -> str:
    """A number for a Markdown cell."""
    return "-" if value is None else f"{value:.{digits}f}"


def publish(out: Path, args: Any, data: Dict[str, Any], write_markdown: Any) -> None:
    """Write ``data`` with the command, date and machine as out/report.json, its
    Markdown (``write_markdown(path, data)``) as out/report.md, and print the Markdown."""
    import time

    out.mkdir(parents=True, exist_ok=True)
    data = {"command": "rasa-gpt " + " ".join(getattr(args, "argv", [])), "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(), **data}
    write_json(out / "report.json", data)
    write_markdown(out / "report.md", data)
    print((out / "report.md").read_text(encoding="utf-8"))
