"""``rasa-gpt bench followup``: follow-up questions to the knowledge answers.

    rasa-gpt bench followup --kb bot/knowledge --questions bot/benchmark/followup_test.yml \\
        [--nlg-options '{"retrieval": {"fit": "knowledge.fit.json"}}'] --out DIR

Each item is a two-message exchange (``{"follow_ups": [{id, language, before, text,
passage, kind}]}``, kind ``follow_up``: ``text`` leans on ``before`` for its subject;
``standalone``: a complete question on another subject). Through the real
GenerativeNLG and beside it, five ways, in the same run:

- ``in_conversation``: ``before`` is asked and answered, then ``text`` (the NLG sees
  the conversation, so its retrieval may use the previous message:
  ``retrieval.context_weight``);
- ``alone``: ``text`` as the first message of a conversation;
- ``ranked_in_conversation`` / ``ranked_alone``: the NLG's retriever without its
  threshold or gate (ranking only, so comparable with BM25);
- ``bm25``: the baseline, BM25 alone over ``text`` alone (no threshold).

Measures, per language and kind: ``right_first`` (the best passage is the labelled
entry's topic, answered or not) and ``answered_right`` (answered with it: a
generated reply or the passage, not a decline; the NLG's ways only).
"""

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa_gpt_components.bench import report

KINDS = ("follow_up", "standalone")
WAYS = ("in_conversation", "alone", "ranked_in_conversation", "ranked_alone", "bm25")
ANSWERING = ("in_conversation", "alone")  # through the NLG: answered or declined


def load_followups(path: Path) -> List[Dict[str, Any]]:
    """The exchanges of a follow-up file, checked."""
    from rasa.shared.utils.io import read_yaml_file

    data = read_yaml_file(path) or {}
    items = data.get("follow_ups") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a 'follow_ups' list.")
    for item in items:
        missing = [k for k in ("id", "before", "text", "passage") if not item.get(k)]
        if missing or item.get("kind") not in KINDS or item.get("language") not in ("zh", "en"):
            raise ValueError(f"{path}: item {item.get('id')} needs id, before, text, passage, "
                             f"kind ({' / '.join(KINDS)}) and language (zh / en).")
    return items


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole benchmark; returns the report data."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig
    from tqdm import tqdm

    from rasa_gpt_components.bench.fallback import DOMAIN_YAML
    from rasa_gpt_components.generation.answer import Outcome
    from rasa_gpt_components.generation.nlg import GenerativeNLG
    from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
    from rasa_gpt_components.knowledge.scores import SCORE_GATE

    items = load_followups(Path(args.questions))
    domain = Domain.from_yaml(DOMAIN_YAML)
    options: Dict[str, Any] = {"knowledge": args.kb, "generation_languages": args.generation_languages.split(",")
                               if args.generation_languages != "none" else []}
    if args.model:
        options["model"] = args.model
    if args.nlg_options:
        options.update(json.loads(args.nlg_options))
    nlg = GenerativeNLG(EndpointConfig(type="rasa_gpt_components.GenerativeNLG", **options), domain)
    retriever = nlg.answerer.retriever
    knowledge = retriever.knowledge_base
    ungated = HybridRetriever(knowledge, dataclasses.replace(retriever.settings, threshold=0.0), retriever.encoder,
                              dataclasses.replace(retriever.fit, thresholds={}, gate=SCORE_GATE) if retriever.fit else None,
                              retriever.topics)
    bm25 = HybridRetriever(knowledge, RetrievalSettings(bm25_weight=1.0, threshold=0.0))
    fallback = "utter_generative_fallback"

    def user(text: str) -> List[Any]:
        return [ActionExecuted("action_listen"), UserUttered(text, intent={"name": "nlu_fallback", "confidence": 0.9})]

    async def reply(item_id: str, events: List[Any]) -> Dict[str, Any]:
        tracker = DialogueStateTracker.from_events(item_id, events)
        answer = await nlg.generate(fallback, tracker, "bench", domain_responses=domain.responses) or {}
        return {"text": answer.get("text", ""), **(answer.get("metadata") or {}).get("generative", {})}

    async def one(item: Dict[str, Any]) -> Dict[str, Any]:
        said = await reply(item["id"], user(item["before"]))
        conversation = [*user(item["before"]), ActionExecuted(fallback), BotUttered(said["text"]), *user(item["text"])]

        def first(searcher: HybridRetriever, context: Optional[str] = None) -> Dict[str, Any]:
            hits = searcher.search(item["text"], top_k=1, language=item["language"], context=context)
            return {"passages": [hits[0].passage.id] if hits else []}

        return {**item, "in_conversation": await reply(item["id"], conversation),
                "alone": await reply(item["id"], user(item["text"])),
                "ranked_in_conversation": first(ungated, item["before"]), "ranked_alone": first(ungated),
                "bm25": first(bm25)}

    async def all_items() -> List[Dict[str, Any]]:
        return [await one(item) for item in tqdm(items, desc="exchanges", unit="ex")]

    rows = asyncio.run(all_items())
    right = lambda r, way: bool(r[way].get("passages")) and (  # noqa: E731
        knowledge.topic_of(r[way]["passages"][0]) == knowledge.topic_of(r["passage"]))
    answered = lambda r, way: r[way].get("outcome") in (Outcome.GENERATED.value, Outcome.PASSAGE.value)  # noqa: E731
    groups: Dict[str, Dict[str, Any]] = {}
    for language in ("zh", "en", "all"):
        for kind in KINDS:
            mine = [r for r in rows if r["kind"] == kind and language in (r["language"], "all")]
            groups[f"{language} {kind}"] = {"items": len(mine), **{
                f"{way}_{measure}": sum(test(r, way) for r in mine)
                for way in WAYS for measure, test in (
                    ("right_first", right), ("answered_right", lambda r, w: answered(r, w) and right(r, w)))
                if way in ANSWERING or measure == "right_first"}}
    for r in rows:
        r["right"] = {way: right(r, way) for way in WAYS}
    data = {"benchmark": "followup", "questions": args.questions,
            "retrieval": dataclasses.asdict(nlg.answerer.retriever.settings), "groups": groups, "exchanges": rows}
    report.publish(Path(args.out), args, data, write_markdown)
    return data


def write_markdown(path: Path, data: Dict[str, Any]) -> None:
    """report.md: right counts per group and way, then every exchange some way got wrong."""
    m = data["machine"]
    measures = [k for k in next(iter(data["groups"].values())) if k != "items"]
    lines = [
        "# Follow-up questions to the knowledge answers", "",
        f"Command: `{data['command']}`  ", f"Date: {data['date']}  ",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, no GPU  ",
        f"Questions: {data['questions']}; retrieval {data['retrieval']}", "",
        report.markdown_table(["group", "items", *measures],
                              [[g, v["items"], *(v[k] for k in measures)] for g, v in data["groups"].items()]), "",
        "`in_conversation`: the second message after the first was answered (the NLG sees both); "
        "`alone`: the second message alone; `ranked_*`: the same retrieval without its threshold or gate "
        "(ranking only); `bm25`: the baseline, BM25 alone over the second message. "
        "`right_first`: the best passage is the labelled entry (answered or not); `answered_right`: answered "
        "with it (not declined).", "",
        "## Exchanges some way got wrong", "",
        report.markdown_table(
            ["id", "kind", "before", "text", "label", *(w.replace("_", " ") for w in WAYS)],
            [[r["id"], r["kind"], r["before"], r["text"], r["passage"],
              *(f"{'✓' if r['right'][w] else '✗'} {(r[w].get('passages') or ['-'])[0]}" for w in WAYS)]
             for r in data["exchanges"] if not all(r["right"].values())]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench followup``."""
    parser.add_argument("--kb", default="bot/knowledge", help="knowledge base folder or file")
    parser.add_argument("--questions", default="bot/benchmark/followup_dev.yml")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--model", help="local model reference")
    parser.add_argument("--generation-languages", default="none",
                        help="zh,en / en / none (default none: the passage chosen is what is measured)")
    parser.add_argument("--nlg-options", help='JSON of GenerativeNLG options, e.g. \'{"retrieval": {"fit": "FILE"}}\'')
