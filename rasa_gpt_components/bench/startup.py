"""``rasa-gpt bench startup``: how long GenerativeNLG takes to start with a large
knowledge base, after the model is loaded: the first start (passage embeddings
computed and cached on disk) and the next (read from the cache).

    rasa-gpt bench startup --entries 1000 [--encoder multilingual-e5-small] [--gate coverage] --out DIR

With ``--gate coverage`` the start also reads every text's token states (the
coverage gate's), computed at the first start and cached on disk too.

The knowledge base is made from the bot's FAQ entries (``--kb``), each copied
with a different tag in its question, paraphrases and answer until there are
``--entries``, so every text is new to the cache at the first start.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from rasa_gpt_components.bench import report


def synthetic_base(source: Path, entries: int, folder: Path) -> Path:
    """``entries`` FAQ entries from the FAQ entries of ``source``, each text tagged apart."""
    import secrets

    import yaml

    from rasa_gpt_components.knowledge import KnowledgeBase

    faqs = [p for p in KnowledgeBase.load(source).passages if "#" not in p.id]
    run = secrets.token_hex(3)  # a new run's texts are new to the cache too
    rows: List[Dict[str, Any]] = []
    for i in range(entries):
        p = faqs[i % len(faqs)]
        tag = f"[{run}-{i}]"
        rows.append({"id": f"entry_{i}", "question": f"{p.title} {tag}", "answer": f"{p.text} {tag}",
                     "paraphrases": [f"{x} {tag}" for x in p.paraphrases[:2]]})
    (folder / "base.yml").write_text(yaml.safe_dump({"version": "1", "faq": rows}, allow_unicode=True), encoding="utf-8")
    return folder


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from rasa.utils.endpoints import EndpointConfig

    from rasa_gpt_components.generation.nlg import GenerativeNLG
    from rasa_gpt_components.models import load_model

    options: Dict[str, Any] = {"retrieval": {}}
    if args.encoder:
        options["retrieval"]["encoder"] = args.encoder
    if args.gate:
        options["retrieval"]["gate"] = args.gate
    if args.model:
        options["model"] = args.model
    tick = time.perf_counter()
    load_model(args.model)
    data: Dict[str, Any] = {"command": "rasa-gpt " + " ".join(getattr(args, "argv", [])),
                            "date": time.strftime("%Y-%m-%d %H:%M"), "machine": report.machine(),
                            "entries": args.entries, "encoder": args.encoder or "GPT model states",
                            "gate": args.gate or "score",
                            "model_load_seconds": round(time.perf_counter() - tick, 2)}
    with tempfile.TemporaryDirectory(prefix="rasa-gpt-startup-") as folder:
        options["knowledge"] = str(synthetic_base(Path(args.kb), args.entries, Path(folder)))
        for name in ("first_start_seconds", "next_start_seconds"):
            tick = time.perf_counter()
            nlg = GenerativeNLG(EndpointConfig(type="rasa_gpt_components.GenerativeNLG", **options))
            data[name] = round(time.perf_counter() - tick, 2)
            data["passages"] = len(nlg.answerer.retriever.knowledge_base)
    data["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json", data)
    lines = ["# GenerativeNLG start-up", "", f"`{data['command']}`, {data['date']}", "",
             report.markdown_table(["measure", "value"], [[k, v] for k, v in data.items() if k != "command"])]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print((out / "report.md").read_text(encoding="utf-8"))
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench startup``."""
    parser.add_argument("--kb", default="bot/knowledge", help="where the FAQ entries are copied from")
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--encoder", help="retrieval.encoder (default: the GPT model's states)")
    parser.add_argument("--gate", choices=["score", "coverage"], help="retrieval.gate (default: score)")
    parser.add_argument("--model", help="local model reference")
    parser.add_argument("--out", required=True, help="report folder")
