"""``rasa-gpt bench intent``: GPTIntentClassifier against the lexical baseline
(``bench/lexical_baseline.py``, always, in the same run) and Rasa's
DIETClassifier (``--baseline diet``).

The Rasa systems are trained with Rasa's own training API on the same split,
each in its own process, and evaluated one message at a time through a Rasa
Agent; the lexical baseline is trained and evaluated in this process, one
message at a time too.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from rasa_gpt_components.bench import report
from rasa_gpt_components.bench.datasets import NAMES, OOS, Dataset, load_dataset, sample_shots
from rasa_gpt_components.bench.lexical_baseline import LexicalBaseline
from rasa_gpt_components.bench.pipelines import config_yaml, diet_pipeline, fallback_classifier, gpt_pipeline
from rasa_gpt_components.bench.typos import with_typos

FALLBACK_INTENTS = {None, "nlu_fallback", OOS}
ERROR_REDUCTION_TARGET = 0.25  # fewer errors than the lexical baseline (issue 16)
RAREST = 10  # intents with the fewest training examples, reported one by one
ANCHORS = {
    "banking77": "fine-tuned distilbert (CPU) 92.8 %, fine-tuned bge-small 92.5 %, "
    "SetFit with 25 examples per intent 85.3 %",
    "clinc150": "Larson et al. 2019: report out-of-scope recall and precision beside "
    "in-scope accuracy",
}


def write_project(directory: Path, dataset: Dataset, train, pipeline, texts: List[str]) -> Path:
    """An NLU-only Rasa project: config.yml, nlu.yml, test.json."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    by_intent: Dict[str, List[str]] = {}
    for text, intent in train:
        by_intent.setdefault(intent, []).append(text)
    nlu = {
        "version": "3.1",
        "nlu": [
            {"intent": intent, "examples": "".join(f"- {_one_line(t)}\n" for t in examples)}
            for intent, examples in sorted(by_intent.items())
        ],
    }
    (directory / "nlu.yml").write_text(yaml.safe_dump(nlu, allow_unicode=True), encoding="utf-8")
    (directory / "config.yml").write_text(config_yaml(dataset.language, pipeline), encoding="utf-8")
    (directory / "test.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return directory


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_system(project: Path) -> Dict[str, Any]:
    """Run the worker for one project; return its result."""
    result_file = project / "result.json"
    subprocess.run(
        [sys.executable, "-m", "rasa_gpt_components.bench.intent_worker", str(project), str(result_file)],
        check=True,
        cwd=project,
    )
    return json.loads(result_file.read_text(encoding="utf-8"))


def dev_split(dataset: Dataset, seed: int, share: float = 0.2) -> Dataset:
    """The development set: ``share`` of each intent of the training split (stratified,
    seeded) becomes the test data, the rest the training data; the test split is not read."""
    from sklearn.model_selection import train_test_split

    rows = [(t, i) for t, i in dataset.train if i != OOS]
    kept, held = train_test_split(rows, test_size=share, random_state=seed, stratify=[i for _, i in rows])
    return Dataset(dataset.name, dataset.language, kept, held)


def run_lexical(train, texts: List[str], seed: int) -> Dict[str, Any]:
    """The lexical baseline, trained on ``train`` and asked one message at a time."""
    import resource

    baseline = LexicalBaseline(seed)
    baseline.train([t for t, _ in train], [i for _, i in train])
    predictions = []
    for text in texts:
        tick = time.perf_counter()
        row = baseline.proba([text])[0]
        ms = 1000 * (time.perf_counter() - tick)
        order = np.argsort(-row)[:10]
        ranking = [[baseline.labels[k], float(row[k])] for k in order]
        predictions.append({"ms": ms, "intent": ranking[0][0], "confidence": ranking[0][1], "ranking": ranking})
    return {
        "train_seconds": baseline.info["train_seconds"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "predictions": predictions,
        "C": baseline.info["C"],
    }


def score(dataset: Dataset, result: Dict[str, Any], has_oos: bool, train=None) -> Dict[str, Any]:
    """Accuracy, macro-F1, latency, memory, (for clinc150) out-of-scope metrics and
    the F1 of the ``RAREST`` intents of ``train``."""
    from sklearn.metrics import f1_score

    truth = [intent for _, intent in dataset.test]
    predictions = result["predictions"]
    predicted = [OOS if p["intent"] in FALLBACK_INTENTS else p["intent"] for p in predictions]
    in_scope = [i for i, t in enumerate(truth) if t != OOS]
    y_true = [truth[i] for i in in_scope]
    y_pred = [predicted[i] for i in in_scope]
    metrics: Dict[str, Any] = {
        "accuracy": round(float(np.mean([a == b for a, b in zip(y_true, y_pred)])), 4),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)),
            4,
        ),
        "train_seconds": round(result["train_seconds"], 1),
        "predict_ms_p50": report.percentile([p["ms"] for p in predictions], 50),
        "predict_ms_p95": report.percentile([p["ms"] for p in predictions], 95),
        "peak_rss_mb": round(result["peak_rss_mb"], 0),
    }
    if has_oos:
        flagged = [i for i, p in enumerate(predicted) if p == OOS]
        true_oos = [i for i, t in enumerate(truth) if t == OOS]
        hits = len(set(flagged) & set(true_oos))
        metrics["oos_recall"] = round(hits / max(len(true_oos), 1), 4)
        metrics["oos_precision"] = round(hits / max(len(flagged), 1), 4)
    # calibration of the classifier's own top in-scope confidence
    confidence, correct = [], []
    for index in in_scope:
        top = next(
            ((n, c) for n, c in predictions[index]["ranking"] if n not in FALLBACK_INTENTS), None
        )
        if top:
            confidence.append(top[1])
            correct.append(top[0] == truth[index])
    confidence_arr, correct_arr = np.array(confidence), np.array(correct, dtype=float)
    metrics["ece"] = round(report.expected_calibration_error(confidence_arr, correct_arr), 4)
    metrics["reliability"] = report.reliability_bins(confidence_arr, correct_arr)
    metrics["top_confusions"] = report.top_confusions(y_true, y_pred)
    if train:
        counts: Dict[str, int] = {}
        for _, intent in train:
            if intent != OOS:  # the out-of-scope examples (--oos-train) are not an intent of the test
                counts[intent] = counts.get(intent, 0) + 1
        rarest = sorted(counts, key=lambda intent: (counts[intent], intent))[:RAREST]
        scores = f1_score(y_true, y_pred, labels=rarest, average=None, zero_division=0)
        metrics["rarest_f1"] = {intent: round(float(f), 4) for intent, f in zip(rarest, scores)}
        metrics["rarest_train_examples"] = {intent: counts[intent] for intent in rarest}
    return metrics


def compare(systems: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The GPT classifier against the lexical baseline (and DIET when it ran)."""
    gpt, lexical = systems["gpt"], systems["lexical"]
    reduction = 1.0 - (1.0 - gpt["accuracy"]) / max(1.0 - lexical["accuracy"], 1e-9)
    out: Dict[str, Any] = {
        "error_reduction_over_lexical": round(reduction, 4),
        "error_reduction_target": ERROR_REDUCTION_TARGET,
        "error_reduction_met": bool(reduction >= ERROR_REDUCTION_TARGET),
        "macro_f1_points_over_lexical": round(100 * (gpt["macro_f1"] - lexical["macro_f1"]), 1),
    }
    if "diet" in systems:
        diet = systems["diet"]
        out.update(
            accuracy_points_over_diet=round(100 * (gpt["accuracy"] - diet["accuracy"]), 1),
            macro_f1_at_least_diet=bool(gpt["macro_f1"] >= diet["macro_f1"]),
            train_time_ratio_diet_over_gpt=round(diet["train_seconds"] / max(gpt["train_seconds"], 1e-9), 2),
        )
    return out


def plot(out: Path, systems: Dict[str, Dict[str, Any]], title: str) -> List[str]:
    """Reliability diagram of every system and the largest confusions of each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for name, metrics in systems.items():
        bins = metrics["reliability"]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
                label=f"{name} (ECE {metrics['ece']:.3f})")
    ax.set_xlabel("confidence of the top intent")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability: {title}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)
    files.append("reliability.png")
    for name, metrics in systems.items():
        pairs = metrics["top_confusions"]
        if not pairs:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(pairs) + 1.2))
        labels = [f"{t} → {p}" for t, p, _ in pairs][::-1]
        ax.barh(labels, [n for _, _, n in pairs][::-1])
        ax.set_xlabel("test messages")
        ax.set_title(f"Largest confusions: {name}, {title}")
        fig.tight_layout()
        fig.savefig(out / f"confusions_{name}.png", dpi=110)
        plt.close(fig)
        files.append(f"confusions_{name}.png")
    return files


def write_reports(out: Path, data: Dict[str, Any], plots: List[str]) -> None:
    """report.json (the numbers) and report.md (for people)."""
    report.write_json(out / "report.json", data)
    keys = ["accuracy", "macro_f1", "train_seconds", "predict_ms_p50", "predict_ms_p95", "peak_rss_mb", "ece"]
    if data["dataset"] == "clinc150":
        keys += ["oos_recall", "oos_precision"]
    rows = [[name] + [metrics.get(k) for k in keys] for name, metrics in data["systems"].items()]
    m = data["machine"]
    lines = [
        f"# Intent benchmark: {data['dataset']}" + (f", {data['shots']} shots per intent" if data["shots"] else ", full training data"),
        "",
        f"Command: `{data['command']}`  ",
        f"Date: {data['date']}  ",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, no GPU; Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads)  ",
        f"Data: {data['train_size']} training messages, {data['test_size']} {data.get('split', 'test')} messages, {data['intents']} intents"
        + (f"; {data['typos']}" if data.get("typos") else ""),
        "",
        report.markdown_table(["system"] + keys, rows),
        "",
        "- `accuracy`: share of in-scope test messages whose predicted intent (after FallbackClassifier, "
        "when the pipeline has one) is the labelled one; `macro_f1` over the in-scope intents.",
        "- `train_seconds`: wall time of Rasa's `train_nlu` for the whole pipeline. "
        "`predict_ms_*`: one message at a time through `Agent.parse_message`, as `rasa run` handles them.",
        "- `peak_rss_mb`: the peak resident memory of the process that trained and evaluated the system.",
        "- `ece`: expected calibration error of the top in-scope intent's confidence (10 bins).",
    ]
    if data["dataset"] == "clinc150":
        lines.append(
            "- Out of scope: a message is flagged when its intent is `nlu_fallback` (the classifier's own "
            f"detector or FallbackClassifier: {data['fallback']})"
            + (f" or `{OOS}`, the intent of the set's {data['oos_train']} out-of-scope training examples "
               "(`--oos-train`; every system trains on them)." if data.get("oos_train")
               else ". No out-of-scope message is in the training data.")
        )
    if data.get("anchors"):
        lines += ["", f"Published anchors: {data['anchors']}"]
    if data.get("comparison"):
        lines += ["", "## Against the baselines (same run)", ""]
        lines += [f"- {k}: {v}" for k, v in data["comparison"].items()]
    gpt = data["systems"].get("gpt", {})
    if gpt.get("rarest_f1"):
        names = list(data["systems"])
        lines += ["", f"## F1 of the {len(gpt['rarest_f1'])} intents with the fewest training examples", ""]
        rows = [
            [intent, gpt["rarest_train_examples"][intent]] + [data["systems"][n]["rarest_f1"][intent] for n in names]
            for intent in gpt["rarest_f1"]
        ]
        lines.append(report.markdown_table(["intent", "training examples"] + names, rows))
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    for name, metrics in data["systems"].items():
        lines += ["", f"## Largest confusions: {name}", ""]
        lines.append(report.markdown_table(["true", "predicted", "messages"], metrics["top_confusions"][:10]))
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole benchmark; returns the report data."""
    dataset = load_dataset(args.dataset, Path(args.datasets) if args.datasets else None)
    if args.dev:
        dataset = dev_split(dataset, args.seed)
    if args.oos_train and not dataset.oos_train:
        raise SystemExit(f"--oos-train: {dataset.name} has no out-of-scope training examples.")
    # with --oos-train the set's out-of-scope examples are one more intent, as in a Rasa bot's out_of_scope
    available = dataset.train + (dataset.oos_train if args.oos_train else [])
    train = sample_shots(available, args.shots, args.seed) if args.shots else available
    if args.max_test:
        rng = np.random.default_rng(args.seed)
        keep = sorted(rng.choice(len(dataset.test), min(args.max_test, len(dataset.test)), replace=False))
        dataset.test = [dataset.test[i] for i in keep]
    has_oos = any(intent == OOS for _, intent in dataset.test)
    texts = [text for text, _ in dataset.test]
    if args.typos:  # every system reads the same misspelt messages
        texts = with_typos(texts, args.seed)
    options = json.loads(args.gpt_options) if args.gpt_options else {}
    if args.model:
        options["model"] = args.model
    options.setdefault("random_seed", args.seed)
    pipelines = {"gpt": gpt_pipeline(dataset.language, options, fallback=has_oos, ambiguity_threshold=args.ambiguity_threshold)}
    if args.baseline == "diet":
        pipelines["diet"] = diet_pipeline(dataset.language, args.diet_epochs, fallback=has_oos,
                                          ambiguity_threshold=args.ambiguity_threshold)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    systems: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="rasa-gpt-bench-") as work:
        for name, pipeline in pipelines.items():
            print(f"== {name}: training on {len(train)} messages, testing on {len(texts)}", flush=True)
            project = write_project(Path(work) / name, dataset, train, pipeline, texts)
            systems[name] = score(dataset, run_system(project), has_oos, train)
            systems[name]["pipeline"] = pipeline
    print(f"== lexical: training on {len(train)} messages, testing on {len(texts)}", flush=True)
    lexical = run_lexical(train, texts, args.seed)
    systems["lexical"] = score(dataset, lexical, has_oos, train)
    systems["lexical"]["pipeline"] = [
        {"name": "char_wb 1-4 TF-IDF + logistic regression (C by 3-fold CV on the training data)", "C": lexical["C"]}
    ]
    data: Dict[str, Any] = {
        "dataset": dataset.name,
        "shots": args.shots,
        "split": "dev (20 % of the training split, stratified, seeded)" if args.dev else "test",
        "cores": report.machine()["cores"],
        "machine": report.machine(),
        "command": "rasa-gpt " + " ".join(args.argv),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "train_size": len(train),
        "oos_train": sum(intent == OOS for _, intent in train),
        "test_size": len(texts),
        "typos": "one seeded typo in one word of 4+ letters of each test message" if args.typos else None,
        "intents": len({i for _, i in train if i != OOS}),
        "anchors": ANCHORS.get(dataset.name),
        "fallback": fallback_classifier(args.ambiguity_threshold) if has_oos else None,
        "systems": systems,
    }
    data["comparison"] = compare(systems)
    write_reports(out, data, plot(out, systems, f"{dataset.name}" + (f" {args.shots}-shot" if args.shots else "")))
    print((out / "report.md").read_text(encoding="utf-8").split("## Plots")[0])
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench intent``."""
    parser.add_argument("--dataset", required=True, choices=NAMES)
    parser.add_argument("--shots", type=int, default=0, help="examples per intent (0: all)")
    parser.add_argument("--baseline", choices=["diet", "none"], default="none")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--datasets", help="data folder (default ../shared/datasets)")
    parser.add_argument("--model", help="model reference for GPTIntentClassifier")
    parser.add_argument("--gpt-options", help="JSON of extra GPTIntentClassifier options")
    parser.add_argument("--diet-epochs", type=int, default=100, help="DIET epochs (Rasa's default 100)")
    parser.add_argument("--max-test", type=int, default=0, help="evaluate on a random subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ambiguity-threshold", type=float,
                        help="FallbackClassifier's ambiguity_threshold where the test data has out-of-scope "
                             "messages (default Rasa's 0.1)")
    parser.add_argument("--oos-train", action="store_true",
                        help="add the set's out-of-scope training examples (clinc150's oos_train) as the intent "
                             f"'{OOS}', for every system: what a Rasa bot with an out_of_scope intent trains on")
    parser.add_argument("--typos", action="store_true",
                        help="put one seeded typo into one English word of each test message (every system "
                             "reads the same ones): how the systems take customers' typing")
    parser.add_argument("--dev", action="store_true",
                        help="test on a seeded 20 %% of the training split instead of the test split (for choosing)")
