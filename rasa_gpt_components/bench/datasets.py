"""Loaders for the shared benchmark data sets (read in place, never copied).

Each loader returns a :class:`Dataset` with train and test lists of
``(text, intent)``; out-of-scope examples carry the intent :data:`OOS`.
"""

import csv
import gzip
import json
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

Example = Tuple[str, str]
OOS = "out_of_scope"
DATASETS_ENV = "RASA_GPT_DATASETS"
NAMES = ("banking77", "clinc150", "insuranceqa_zh")


@dataclass
class Dataset:
    """A benchmark split."""

    name: str
    language: str
    train: List[Example]
    test: List[Example]
    # out-of-scope training examples the set provides (CLINC150's oos_train), kept apart:
    # a benchmark adds them to the training data only when asked (``--oos-train``)
    oos_train: List[Example] = field(default_factory=list)

    @property
    def intents(self) -> List[str]:
        """In-scope intents of the training data."""
        return sorted({intent for _, intent in self.train if intent != OOS})


def default_root() -> Path:
    """``$RASA_GPT_DATASETS``, else ``../shared/datasets`` beside the checkout."""
    env = os.environ.get(DATASETS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "datasets"


def _banking77(root: Path) -> Dataset:
    def read(file: str) -> List[Example]:
        with open(root / "banking77" / file, encoding="utf-8", newline="") as handle:
            return [(row["text"], row["category"]) for row in csv.DictReader(handle)]

    return Dataset("banking77", "en", read("train.csv"), read("test.csv"))


def _clinc150(root: Path) -> Dataset:
    data = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    test = [(t, i) for t, i in data["test"]] + [(t, OOS) for t, _ in data["oos_test"]]
    # the in-scope train split; its out-of-scope examples only on request
    oos_train = [(t, OOS) for t, _ in data["oos_train"]]
    return Dataset("clinc150", "en", [(t, i) for t, i in data["train"]], test, oos_train)


def _insuranceqa_zh(root: Path) -> Dataset:
    def read(file: str) -> List[Example]:
        rows = []
        with gzip.open(root / "insuranceqa_zh" / file, "rt", encoding="utf-8") as handle:
            for line in handle:
                parts = [p.strip() for p in line.split("++$++")]
                if len(parts) >= 3 and parts[2]:
                    rows.append((parts[2], parts[1]))
        return rows

    return Dataset("insuranceqa_zh", "zh", read("train.txt.gz"), read("test.txt.gz"))


LOADERS: Dict[str, Callable[[Path], Dataset]] = {
    "banking77": _banking77,
    "clinc150": _clinc150,
    "insuranceqa_zh": _insuranceqa_zh,
}


def load_dataset(name: str, root: Optional[Path] = None) -> Dataset:
    """Load a data set by name from ``root`` (default :func:`default_root`)."""
    if name not in LOADERS:
        raise ValueError(f"Unknown data set '{name}'; choose one of {', '.join(NAMES)}.")
    root = Path(root) if root else default_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"Data set folder {root} not found; pass --datasets or set ${DATASETS_ENV}."
        )
    return LOADERS[name](root)


def sample_shots(train: List[Example], shots: int, seed: int = 0) -> List[Example]:
    """``shots`` examples per intent (all of them when an intent has fewer)."""
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in train:
        by_intent[intent].append(text)
    rng = random.Random(seed)
    sampled = []
    for intent in sorted(by_intent):
        texts = by_intent[intent]
        chosen = rng.sample(texts, shots) if len(texts) > shots else list(texts)
        sampled.extend((text, intent) for text in chosen)
    return sampled
