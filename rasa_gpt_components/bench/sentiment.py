"""``rasa-gpt bench sentiment``: SentimentAnalyzer against a character n-gram
logistic regression (the lexical baseline), in the same run, on the same
seeded split.

Data (read in place, never copied): ``sentiment_zh_shopping`` (Chinese
e-commerce reviews, 0 negative / 1 positive) and ``sentiment_en_airline``
(English customer-service tweets, negative / neutral / positive).
The split is stratified and seeded: ``test_share`` of each set is the test
split; ``--dev`` evaluates on a dev split carved from the training part
instead (for choosing options without looking at the test split).
"""

import argparse
import csv
import io
import json
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_gpt_components.bench import report
from rasa_gpt_components.bench.datasets import default_root
from rasa_gpt_components.bench.lexical_baseline import LexicalBaseline

TARGETS = {  # from the issue; never lowered here
    "zh_shopping": {"accuracy": 0.95},
    "en_airline": {"accuracy": 0.85, "macro_f1": 0.80},
}
ERROR_REDUCTION_TARGET = 0.20
MS_TARGET = 5.0
ZH_LABELS = {"0": "negative", "1": "positive"}


@dataclass
class SentimentSet:
    """Texts and labels of one data set."""

    name: str
    language: str
    texts: List[str]
    labels: List[str]


def _zh_shopping(root: Path) -> SentimentSet:
    with zipfile.ZipFile(root / "sentiment_zh_shopping" / "online_shopping_10_cats.zip") as archive:
        with archive.open("online_shopping_10_cats.csv") as raw:
            rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    pairs = [(row["review"] or "", ZH_LABELS.get(row["label"], row["label"])) for row in rows]
    return SentimentSet("zh_shopping", "zh", [t for t, _ in pairs], [label for _, label in pairs])


def _en_airline(root: Path) -> SentimentSet:
    with open(root / "sentiment_en_airline" / "Tweets.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return SentimentSet("en_airline", "en", [r["text"] for r in rows], [r["airline_sentiment"] for r in rows])


LOADERS: Dict[str, Callable[[Path], SentimentSet]] = {"zh_shopping": _zh_shopping, "en_airline": _en_airline}


def load_set(name: str, root: Optional[Path] = None) -> SentimentSet:
    """One data set, cleaned (``text.clean_text``), empty texts dropped."""
    from rasa_gpt_components.text import clean_text

    raw = LOADERS[name](root or default_root())
    pairs = [(clean_text(t), label) for t, label in zip(raw.texts, raw.labels)]
    pairs = [(t, label) for t, label in pairs if t and label]
    return SentimentSet(raw.name, raw.language, [t for t, _ in pairs], [label for _, label in pairs])


def split(labels: Sequence[str], share: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows): a stratified seeded split with ``share`` held out."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    kept, held = train_test_split(rows, test_size=share, random_state=seed, stratify=list(labels))
    return np.sort(kept), np.sort(held)


def _cap(rows: np.ndarray, labels: Sequence[str], cap: int, seed: int) -> np.ndarray:
    """A stratified seeded subsample of ``cap`` of ``rows`` (0: all)."""
    if not cap or cap >= len(rows):
        return rows
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(rows, train_size=cap, random_state=seed, stratify=[labels[i] for i in rows])
    return kept


# -- the two systems ------------------------------------------------------


class System:
    """SentimentAnalyzer as Rasa builds it (a local model storage), trained from a CSV."""

    def __init__(self, options: Dict[str, Any], work: Path) -> None:
        self.options, self.work = options, work

    def train(self, texts: List[str], labels: List[str]) -> None:
        from rasa.engine.storage.local_model_storage import LocalModelStorage
        from rasa.engine.storage.resource import Resource
        from rasa.shared.nlu.training_data.training_data import TrainingData

        from rasa_gpt_components.nlu.sentiment import SentimentAnalyzer

        data = self.work / "train.csv"
        with open(data, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts, labels))
        config = {**SentimentAnalyzer.get_default_config(), **self.options, "training_data": str(data)}
        (self.work / "storage").mkdir(parents=True, exist_ok=True)
        storage = LocalModelStorage(self.work / "storage")
        self.component = SentimentAnalyzer.create(config, storage, Resource("sentiment"), None)
        self.component.train(TrainingData())
        self.labels = list(self.component.head.labels)

    def proba(self, texts: List[str]) -> np.ndarray:
        probabilities = self.component.probabilities(texts)
        self.component.clear_cache()  # the timed messages must not be remembered features
        return probabilities

    def one_message(self, text: str) -> None:
        """What Rasa runs for one parsed message."""
        from rasa.shared.nlu.training_data.message import Message

        self.component.process([Message(data={"text": text})])

    def before_shared(self, text: str) -> None:
        """What GPTIntentClassifier (default features) computed for the message before the
        analyzer runs: its sentence vector, which the shared encoder remembers."""
        self.component.encoder.encode([text])

    def after_shared(self) -> None:
        self.component.clear_cache()


def evaluate(system: Any, texts: List[str], truth: List[str], latency_texts: List[str]) -> Dict[str, Any]:
    """Accuracy, macro-F1, per-class F1, ECE and ms per message (one at a time)."""
    from sklearn.metrics import f1_score

    probabilities = system.proba(texts)
    predicted = [system.labels[k] for k in probabilities.argmax(1)]
    labels = sorted(set(truth))
    per_class = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    correct = np.array([p == t for p, t in zip(predicted, truth)], dtype=float)
    timings, shared = [], []
    one = getattr(system, "one_message", None) or (lambda text: system.proba([text]))
    for text in latency_texts:
        start = time.perf_counter()
        one(text)
        timings.append(1000 * (time.perf_counter() - start))
        if hasattr(system, "before_shared"):  # beside the intent classifier, which encoded it first
            system.after_shared()
            system.before_shared(text)
            start = time.perf_counter()
            one(text)
            shared.append(1000 * (time.perf_counter() - start))
            system.after_shared()
    timed = {}
    if shared:
        timed = {"shared_ms_p50": report.percentile(shared, 50), "shared_ms_p95": report.percentile(shared, 95)}
    return {**timed,
        "accuracy": round(float(correct.mean()), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 4),
        "f1_per_class": {label: round(float(f), 4) for label, f in zip(labels, per_class)},
        "ece": round(report.expected_calibration_error(probabilities.max(1), correct), 4),
        "ms_p50": report.percentile(timings, 50),
        "ms_p95": report.percentile(timings, 95),
        "top_confusions": report.top_confusions(truth, predicted),
    }


def bench_set(data: SentimentSet, args: argparse.Namespace, options: Dict[str, Any], work: Path) -> Dict[str, Any]:
    """Both systems on one data set: train on the training part, evaluate on the test (or dev) split."""
    train, test = split(data.labels, args.test_share, args.seed)
    if args.dev:  # choose options here: a dev split of the training part only
        train_labels = [data.labels[i] for i in train]
        kept, dev = split(train_labels, args.test_share, args.seed)
        train, test = train[kept], train[dev]
    train = train[np.sort(_cap(np.arange(len(train)), [data.labels[i] for i in train], args.max_train, args.seed))]
    test = test[np.sort(_cap(np.arange(len(test)), [data.labels[i] for i in test], args.max_test, args.seed))]
    texts = [data.texts[i] for i in train]
    labels = [data.labels[i] for i in train]
    test_texts = [data.texts[i] for i in test]
    truth = [data.labels[i] for i in test]
    latency_texts = test_texts[: args.latency_messages]
    result: Dict[str, Any] = {
        "language": data.language,
        "split": "dev (part of the training split)" if args.dev else "test",
        "train_size": len(texts),
        "test_size": len(test_texts),
        "labels": sorted(set(labels)),
        "systems": {},
    }
    for name, system in (("baseline", LexicalBaseline(args.seed, C=10.0)), ("gpt", System(options, work / data.name))):
        print(f"== {data.name} / {name}: training on {len(texts)}, testing on {len(test_texts)}", flush=True)
        (work / data.name).mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        system.train(texts, labels)
        train_seconds = round(time.perf_counter() - start, 1)
        result["systems"][name] = {"train_seconds": train_seconds, **evaluate(system, test_texts, truth, latency_texts)}
        if name == "gpt":
            result["sentence_view"] = system.component.view  # None: a GPT model's states
            result["lexical_share"] = system.component.lexical_share  # the n-gram head's share
    result["comparison"] = compare(data.name, result["systems"]["gpt"], result["systems"]["baseline"])
    return result


def compare(name: str, gpt: Dict[str, Any], baseline: Dict[str, Any]) -> Dict[str, Any]:
    """Error reduction against the baseline and every target, met or not."""
    reduction = 1.0 - (1.0 - gpt["accuracy"]) / max(1.0 - baseline["accuracy"], 1e-9)
    checks = {
        "error_reduction": (round(reduction, 4), ERROR_REDUCTION_TARGET, reduction >= ERROR_REDUCTION_TARGET),
        "added_ms_p50": (gpt["ms_p50"], MS_TARGET, gpt["ms_p50"] <= MS_TARGET),
        "added_ms_p50_beside_intent_classifier": (
            gpt.get("shared_ms_p50"), MS_TARGET, gpt.get("shared_ms_p50") is not None and gpt["shared_ms_p50"] <= MS_TARGET),
    }
    for metric, target in TARGETS.get(name, {}).items():
        checks[metric] = (gpt[metric], target, gpt[metric] >= target)
    return {key: {"value": v, "target": t, "met": bool(met)} for key, (v, t, met) in checks.items()}


def write_reports(out: Path, data: Dict[str, Any]) -> None:
    """report.json (the numbers) and report.md (for people)."""
    from rasa_gpt_components.nlu.sentiment_settings import SentimentSettings

    report.write_json(out / "report.json", data)
    m = data["machine"]
    lines = [
        "# Sentiment benchmark",
        "",
        f"Command: `{data['command']}`  ",
        f"Date: {data['date']}  ",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, no GPU; Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads)  ",
        f"Split: stratified, seed {data['seed']}, {int(100 * data['test_share'])} % test"
        + (f"; at most {data['max_train']} training / {data['max_test']} evaluation messages (seeded)" if data["max_train"] or data["max_test"] else "")
        + f"  \nSentimentAnalyzer options: `{json.dumps(data['options'])}`",
    ]
    keys = ["accuracy", "macro_f1", "ece", "ms_p50", "ms_p95", "shared_ms_p50", "shared_ms_p95", "train_seconds"]
    for name, result in data["sets"].items():
        lines += [
            "",
            f"## {name} ({result['language']}): {result['train_size']} training, {result['test_size']} {result['split']} messages"
            + (f"; sentence view `{result['sentence_view']}`" if result.get("sentence_view") else "")
            + (f"; n-gram head's share {result['lexical_share']:.1f}" if "lexical_share" in result else ""),
            "",
            report.markdown_table(
                ["system"] + keys + ["F1 per class"],
                [[s] + [r.get(k, "-") for k in keys] + [", ".join(f"{c} {f}" for c, f in r["f1_per_class"].items())]
                 for s, r in result["systems"].items()],
            ),
            "",
            report.markdown_table(
                ["against target", "value", "target", "met"],
                [[k, c["value"], c["target"], "yes" if c["met"] else "**no**"] for k, c in result["comparison"].items()],
            ),
        ]
    lines += [
        "",
        "- `baseline`: character 1-4-gram TF-IDF + logistic regression (C=10), trained on the same split in this run.",
        f"- `gpt`: SentimentAnalyzer on `{data['options'].get('model') or SentimentSettings().model}` "
        "(a view of a sentence encoder, named beside each set, or a GPT model's pooled states; + character "
        "n-grams, calibrated head).",
        "- `ece`: expected calibration error of the top label's score (10 bins).",
        "- `ms_*`: one message at a time (the component's `process`, as Rasa runs it; the baseline's transform + predict).",
        "- `shared_ms_*`: the same, after GPTIntentClassifier (default features) encoded the message: the sentence "
        "encoder is shared and remembers it, so the analyzer adds only its head. In a pipeline with that classifier "
        "this is what the analyzer adds per message.",
        "- `error_reduction`: 1 - errors(gpt) / errors(baseline).",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole benchmark; returns the report data."""
    root = Path(args.datasets) if args.datasets else None
    options = json.loads(args.options) if args.options else {}
    if args.model:
        options["model"] = args.model
    options.setdefault("random_seed", args.seed)
    options.setdefault("show_progress", False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(LOADERS) if args.dataset == "all" else [args.dataset]
    sets: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rasa-gpt-sentiment-") as work:
        for name in names:
            sets[name] = bench_set(load_set(name, root), args, options, Path(work))
    data = {
        "command": "rasa-gpt " + " ".join(getattr(args, "argv", [])),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": report.machine(),
        "seed": args.seed,
        "test_share": args.test_share,
        "max_train": args.max_train,
        "max_test": args.max_test,
        "options": options,
        "sets": sets,
    }
    write_reports(out, data)
    print((out / "report.md").read_text(encoding="utf-8"))
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench sentiment``."""
    parser.add_argument("--dataset", choices=["all", *LOADERS], default="all")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--datasets", help="data folder (default ../shared/datasets)")
    parser.add_argument("--model", help="model reference for SentimentAnalyzer")
    parser.add_argument("--options", help="JSON of SentimentAnalyzer options")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--dev", action="store_true", help="evaluate on a dev split of the training part")
    parser.add_argument("--max-train", type=int, default=0, help="seeded subsample of the training part (0: all)")
    parser.add_argument("--max-test", type=int, default=0, help="seeded subsample of the evaluation split (0: all)")
    parser.add_argument("--latency-messages", type=int, default=200, help="messages timed one at a time")
