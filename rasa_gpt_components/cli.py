"""The ``rasa-gpt`` command.

    rasa-gpt models list
    rasa-gpt models prepare [NAME|FILE.gguf] [--force]
    rasa-gpt bench intent --dataset NAME [--shots N] [--baseline diet] --out DIR
    rasa-gpt bench sentiment [--dataset zh_shopping|en_airline] --out DIR
    rasa-gpt bench fallback --kb DIR --questions FILE --out DIR
    rasa-gpt bench summary REPORT_DIR [REPORT_DIR ...]
    rasa-gpt bench load --url URL [--url URL ...] --conversations N --turns M --out DIR
    rasa-gpt bench handoff --model MODEL [--endpoints FILE] [--conversations FILE] --out DIR
    rasa-gpt bench startup [--entries N] [--encoder NAME] --out DIR
    rasa-gpt bench recommend --database-url URL [--requests FILE] [--split dev|test|all] [--scale N] --out DIR
    rasa-gpt bench repair --model MODEL [--stories FILE] [--url URL --database-url URL] --out DIR
    rasa-gpt bench followup --kb DIR --questions FILE [--nlg-options JSON] --out DIR
    rasa-gpt knowledge fit --kb DIR --dev FILE [--encoder NAME] [--topics] [--followups FILE] --out FILE
"""

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from rasa_gpt_components.models import cache
from rasa_gpt_components.models.convert import is_prepared, prepare_gguf
from rasa_gpt_components.models.errors import ModelLoadError
from rasa_gpt_components.models.registry import DEFAULT_MODEL, KNOWN_MODELS, get_spec
from rasa_gpt_components.models.sentence import SENTENCE_ENCODERS

# `rasa-gpt bench <name>`: the module rasa_gpt_components.bench.<name>, and its help
BENCHMARKS = [
    ("intent", "GPTIntentClassifier against Rasa's DIETClassifier"),
    ("sentiment", "SentimentAnalyzer against a character n-gram baseline (zh and en)"),
    ("fallback", "held-out questions through GenerativeFallbackPolicy + GenerativeNLG"),
    ("summary", "one Markdown table over many reports"),
    ("load", "concurrent conversations through a running bot's REST channel, then its tracker store"),
    ("handoff", "scripted conversations ending in a hand-off: the summary the agents' desk receives"),
    ("startup", "GenerativeNLG's start-up with a large knowledge base, first and cached"),
    ("recommend", "the recommender on labelled requests and held-out last purchases, beside rules and popularity"),
    ("followup", "follow-up questions to knowledge answers, with and without the previous message"),
    ("repair", "a conversation test set through rasa test --e2e, then through a live bot: its actions and what it wrote"),
]


def _human_size(num_bytes: int) -> str:
    size = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def models_list(_: argparse.Namespace) -> int:
    """Print the known models and every prepared copy in the cache."""
    rows = [("NAME", "LICENSE", "SOURCE", "PREPARED", "SIZE", "PATH")]
    listed = set()
    for spec in KNOWN_MODELS.values():
        directory = cache.prepared_dir(spec.name, spec.sha256)
        prepared = is_prepared(directory, spec.sha256)
        listed.add(directory.name)
        name = spec.name + (" (default)" if spec.name == DEFAULT_MODEL else "")
        source = f"{spec.package}=={spec.package_version}"
        if not spec.is_installed():
            source += " (not installed)"
        rows.append(
            (
                name,
                spec.license,
                source,
                "yes" if prepared else "no",
                _human_size(cache.directory_size(directory)) if prepared else "-",
                str(directory) if prepared else "-",
            )
        )
    prepared_root = cache.cache_root() / "prepared"
    if prepared_root.is_dir():
        for directory in sorted(prepared_root.iterdir()):
            manifest = cache.read_manifest(directory)
            if directory.name in listed or not directory.is_dir() or not manifest:
                continue
            rows.append(
                (
                    manifest.get("name", directory.name),
                    "?",
                    manifest.get("source", "?"),
                    "yes" if is_prepared(directory, manifest["source_sha256"]) else "broken",
                    _human_size(cache.directory_size(directory)),
                    str(directory),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"\ncache: {cache.cache_root()}  (set ${cache.CACHE_ENV} to move it)")
    return 0


def models_prepare(args: argparse.Namespace) -> int:
    """Convert a known model or a .gguf file into the cache (once)."""
    reference = args.name or DEFAULT_MODEL
    spec = get_spec(reference)
    if spec is not None:
        source, name, expected = spec.source_file(), spec.name, spec.sha256
    else:
        source = Path(reference).expanduser()
        if not (source.is_file() and source.suffix.lower() == ".gguf"):
            print(
                f"error: '{reference}' is neither a known model "
                f"({', '.join(sorted(KNOWN_MODELS))}) nor a .gguf file.",
                file=sys.stderr,
            )
            return 2
        name, expected = source.stem.lower(), ""
    directory = prepare_gguf(source, name, expected, force=args.force, progress=True)
    print(f"{name}: prepared in {directory} ({_human_size(cache.directory_size(directory))})")
    return 0


def knowledge_fit(args: argparse.Namespace) -> int:
    """Fit retrieval to the bot (knowledge/fit.py) and write the file the NLG reads."""
    from rasa_gpt_components.bench.fallback import load_questions
    from rasa_gpt_components.bench.followup import load_followups
    from rasa_gpt_components.knowledge import KnowledgeBase
    from rasa_gpt_components.knowledge.fit import fit
    from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
    from rasa_gpt_components.knowledge.scores import COVERAGE_GATE, SCORE_GATE
    from rasa_gpt_components.models.sentence import load_sentence_encoder

    knowledge = KnowledgeBase.load(Path(args.kb))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    topics = topic_file = None
    if args.topics:
        from rasa_gpt_components.knowledge.topics import TopicModel

        topics = TopicModel.train(knowledge, progress=True)
        topic_file = out.with_suffix(".topics.npz")
        topics.save(topic_file)
    encoder = load_sentence_encoder(args.encoder)
    # an encoder that gives each token's states (e5) can gate on coverage too: the fit weighs it
    gate = COVERAGE_GATE if getattr(encoder, "has_token_states", False) else SCORE_GATE
    retriever = HybridRetriever(knowledge, RetrievalSettings(encoder=args.encoder, threshold=0.0, gate=gate),
                                encoder, topics=topics)
    result = fit(retriever, load_questions(Path(args.dev)), encoder=args.encoder,
                 topic_model=topic_file.name if topic_file else None,
                 followups=load_followups(Path(args.followups)) if args.followups else ())
    result.save(out)
    print(json.dumps({"out": str(out), "gate": result.gate, "bm25_weight": result.bm25_weight,
                      "topic_model": result.topic_model,
                      "topic_weight": result.topic_weight, "thresholds": result.thresholds,
                      "context_weight": result.context_weight, "context_candidates": result.context_candidates,
                      "development": result.development}, indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rasa-gpt``."""
    parser = argparse.ArgumentParser(
        prog="rasa-gpt", description="Local GPT models for Rasa 3.6: model management."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="list and prepare models")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    model_commands.add_parser("list", help="known and prepared models").set_defaults(
        func=models_list
    )
    prepare = model_commands.add_parser(
        "prepare", help="convert a model into the cache once (GGUF -> safetensors)"
    )
    prepare.add_argument("name", nargs="?", help=f"model name or .gguf file (default {DEFAULT_MODEL})")
    prepare.add_argument("--force", action="store_true", help="convert again even if prepared")
    prepare.set_defaults(func=models_prepare)

    bench = commands.add_parser("bench", help="benchmarks that write JSON + Markdown reports")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True)
    for name, help_text in BENCHMARKS:  # each module: add_arguments(parser) and run(args)
        module = importlib.import_module(f"rasa_gpt_components.bench.{name}")
        command = bench_commands.add_parser(name, help=help_text)
        module.add_arguments(command)
        command.set_defaults(func=module.run)

    knowledge = commands.add_parser("knowledge", help="fit retrieval to the bot's own data")
    knowledge_commands = knowledge.add_subparsers(dest="knowledge_command", required=True)
    fit = knowledge_commands.add_parser("fit", help="BM25 weight, the answer gate and its thresholds "
                                                    "(docs/generative_fallback.md)")
    fit.add_argument("--kb", default="knowledge", help="the knowledge base folder")
    fit.add_argument("--dev", required=True, help="development questions (bench fallback's format)")
    fit.add_argument("--encoder", default="multilingual-e5-small", choices=sorted(SENTENCE_ENCODERS))
    fit.add_argument("--out", required=True, help="the file to write (retrieval: {fit: FILE} in endpoints.yml)")
    fit.add_argument("--topics", action="store_true",
                     help="also train a classifier over the knowledge base's topics (knowledge/topics.py), "
                          "written beside --out as NAME.topics.npz")
    fit.add_argument("--followups", help="development follow-up questions (bench followup's format): "
                                          "also choose how much the previous message counts")
    fit.set_defaults(func=knowledge_fit)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``rasa-gpt`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        result = args.func(args)
        return result if isinstance(result, int) else 0
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
