"""Retrieval fitted to a bot: ``rasa-gpt knowledge fit``.

Written once, ahead of time (never at bot start-up), into a JSON file that
``GenerativeNLG`` reads (``retrieval: {fit: FILE}``), from the bot's knowledge
base and its *development* questions (``bot/benchmark/fallback_dev.yml``:
answerable questions labelled with their entry, and unanswerable ones):

- **the fusion weight** of BM25 and the encoder's cosine: the one that puts
  the labelled entry (its topic) first most often on the answerable questions;
- with a topic model (``knowledge/topics.py``, ``--topics``), **the topic
  weight**: the share of the topic classifier's probability in the score, the
  one that puts the labelled entry first most often (ties: more topic model);
- **the answer threshold** per language, on that score: the one that
  best balances answerable questions answered with the right entry against
  unanswerable questions declined ((right + declined) / 2, the criterion the
  fallback benchmark's BM25 baseline is given too). Below it the bot declines.
  With an encoder, the threshold may instead apply to the best cosine of any
  passage's form, and with an encoder that gives each token's states (e5) to the
  coverage of the question by the best few entries (``knowledge/coverage.py``;
  the best covered is answered): the **gate** is whichever balances best on the
  development questions, both languages together (ties: the score, then the
  cosine).

- with development follow-up exchanges (``--followups``), **the previous
  message's weight** for follow-up questions (``retrieval.context_weight`` and
  ``context_candidates``): the pair that puts the labelled entry first for the
  most exchanges, the follow-ups and each answerable development question asked
  after another one (ties: the smaller weight).

The file records the encoder, the knowledge base it was fitted on (a hash of
its passages: the NLG warns when the base has changed since) and the
development measures. docs/generative_fallback.md tells what was tried and
measured, including an answerability model trained on the bot's NLU examples
(on par with this threshold on the development questions; not shipped).
"""

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_gpt_components.knowledge.base import Passage
from rasa_gpt_components.knowledge.scores import (COSINE_GATE, COVERAGE_GATE, SCORE_GATE, Scores, best_per_topic,
                                                  combine, in_context)

WEIGHTS = tuple(round(0.1 * k, 1) for k in range(11))  # BM25's share of the fused score; the topic model's
CONTEXT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)  # the previous message's weight for follow-up questions
CONTEXT_CANDIDATES = (3, 5, 8)  # how many of the question's best topics it may reorder
FORMAT_VERSION = 1
GATES = (SCORE_GATE, COSINE_GATE, COVERAGE_GATE)  # in the order ties are broken


def knowledge_fingerprint(passages: Sequence[Passage]) -> str:
    """A hash of the passages' ids, texts and forms: what the fit saw."""
    digest = hashlib.sha256()
    for p in passages:
        digest.update(json.dumps([p.id, p.text, p.title, list(p.paraphrases), p.language]).encode("utf-8"))
    return digest.hexdigest()[:16]


@dataclass
class RetrievalFit:
    """What ``rasa-gpt knowledge fit`` writes and ``GenerativeNLG`` reads."""

    encoder: Optional[str]
    bm25_weight: float
    thresholds: Dict[str, float]  # language -> the fused score an answer needs
    knowledge_fingerprint: str
    development: Dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    topic_model: Optional[str] = None  # its file (knowledge/topics.py), relative to this one
    topic_weight: float = 0.0  # the topic model's share of the score
    gate: str = SCORE_GATE  # what the thresholds apply to: the best score, the best cosine, or the coverage
    # follow-up questions (fitted with --followups): retrieval.context_weight / context_candidates
    context_weight: Optional[float] = None
    context_candidates: Optional[int] = None

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "RetrievalFit":
        """Read a fit file; a ValueError that names the file when it cannot be used."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('format_version')}, this version reads {FORMAT_VERSION}")
            if data.get("gate", SCORE_GATE) not in GATES:
                raise ValueError(f"gate {data.get('gate')!r}, expected one of {', '.join(GATES)}")
            return cls(data["encoder"], float(data["bm25_weight"]),
                       {lang: float(t) for lang, t in data["thresholds"].items()},
                       data["knowledge_fingerprint"], data.get("development") or {},
                       topic_model=data.get("topic_model"), topic_weight=float(data.get("topic_weight") or 0.0),
                       gate=str(data.get("gate") or SCORE_GATE),
                       context_weight=_optional(data.get("context_weight"), float),
                       context_candidates=_optional(data.get("context_candidates"), int))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"retrieval fit '{path}' cannot be used ({error}); "
                             "write it again with `rasa-gpt knowledge fit`.") from None


def _optional(value: Any, kind: Any) -> Any:
    return None if value is None else kind(value)


def _is_answerable(question: Dict[str, Any]) -> bool:
    return question["kind"] == "answerable" and bool(question.get("passage"))


def _best(scores: Scores, weight: float, topic_weight: float = 0.0) -> int:
    return int(np.argmax(combine(scores, weight, topic_weight)))


def choose_weight(
    answerable: Sequence[Tuple[Scores, str]], topics: Sequence[str], bm25_weight: Optional[float] = None
) -> Tuple[float, Dict[float, float]]:
    """The BM25 weight (or, given ``bm25_weight``, the topic weight) that puts the
    labelled topic first most often (ties: the larger), and the share right at each weight."""
    def best(scores: Scores, w: float) -> int:
        return _best(scores, w) if bm25_weight is None else _best(scores, bm25_weight, w)

    right = {w: sum(topics[best(s, w)] == label for s, label in answerable) / max(len(answerable), 1)
             for w in WEIGHTS}
    return max(WEIGHTS, key=lambda w: (right[w], w)), right


def choose_threshold(answerable: Sequence[Tuple[float, bool]], unanswerable: Sequence[float]) -> Tuple[float, Dict[str, float]]:
    """The score threshold that maximises (answerable answered right + unanswerable declined) / 2
    (ties: the lower); ``answerable``: (best score, best topic right) per question."""
    def measures(t: float) -> Dict[str, float]:
        return {
            "right_and_answered": sum(score >= t and ok for score, ok in answerable) / max(len(answerable), 1),
            "unanswerable_declined": sum(score < t for score in unanswerable) / max(len(unanswerable), 1),
            "answerable_declined": sum(score < t for score, _ in answerable) / max(len(answerable), 1),
        }
    candidates = sorted({0.0, *(round(s + 1e-6, 6) for s, _ in answerable), *(round(s + 1e-6, 6) for s in unanswerable)})
    measured = {t: measures(t) for t in candidates}
    best = max(candidates, key=lambda t: ((measured[t]["right_and_answered"] + measured[t]["unanswerable_declined"]) / 2, -t))
    return best, {k: round(v, 4) for k, v in measured[best].items()}


def exchanges(dev: Sequence[Dict[str, Any]], followups: Sequence[Dict[str, Any]], seed: int = 0) -> List[Dict[str, Any]]:
    """Two-message exchanges ``{before, text, passage}`` to choose the context weight on:
    ``followups`` (follow-up questions and standalone ones after an unrelated message), and
    each answerable ``dev`` question after another one of its language on another entry
    (seeded): standalone questions are the common case, the context must not mislead them."""
    answerable = [q for q in dev if _is_answerable(q)]
    rng = random.Random(seed)
    after_another = []
    for q in answerable:
        others = [o for o in answerable if o["language"] == q["language"] and o["passage"] != q["passage"]]
        if others:
            after_another.append({"before": rng.choice(others)["text"], "text": q["text"], "passage": q["passage"],
                                  "kind": "after_another"})
    return [*followups, *after_another]


def choose_context(retriever: Any, items: Sequence[Dict[str, Any]], weight: float, topic_weight: float
                   ) -> Tuple[float, int, Dict[str, Dict[str, int]]]:
    """The context weight and candidates (CONTEXT_WEIGHTS x CONTEXT_CANDIDATES) that put the
    labelled topic first for the most ``items`` (``exchanges``; ties: the smaller weight, then
    fewer candidates), and the right count per kind at each."""
    topics = [p.topic_key for p in retriever.knowledge_base.passages]
    topic_of = retriever.knowledge_base.topic_of
    scored = []
    for item in items:
        own = combine(retriever.component_scores(item["text"]), weight, topic_weight)
        both = combine(retriever.component_scores(f"{item['before']} {item['text']}"), weight, topic_weight)
        scored.append((item, own, both, best_per_topic(own, topics)))
    right: Dict[Tuple[float, int], Dict[str, int]] = {}
    for w in CONTEXT_WEIGHTS:
        for k in CONTEXT_CANDIDATES:
            counts: Dict[str, int] = {}
            for item, own, both, order in scored:
                first = in_context(order, own, both, topics, w, k)[0]
                counts[item["kind"]] = counts.get(item["kind"], 0) + int(topics[first] == topic_of(item["passage"]))
            right[(w, k)] = counts
    best = max(right, key=lambda wk: (sum(right[wk].values()), -wk[0], -wk[1]))
    return best[0], best[1], {f"{w}x{k}": counts for (w, k), counts in right.items()}


def fit(retriever: Any, dev: Sequence[Dict[str, Any]], encoder: Optional[str] = None,
        topic_model: Optional[str] = None, followups: Sequence[Dict[str, Any]] = ()) -> RetrievalFit:
    """Fit ``retriever`` (a ``HybridRetriever`` with its encoder, any weight, and its
    topic model if any, saved as ``topic_model``) on ``dev`` questions
    (``{text, language, kind, passage}``: the fallback benchmark's format), and, given
    ``followups`` (``{before, text, passage, kind}``), the weight of the previous message."""
    passages: List[Passage] = retriever.knowledge_base.passages
    topics = [p.topic_key for p in passages]
    topic_of = retriever.knowledge_base.topic_of
    questions = [q for q in dev if q["kind"] in ("answerable", "unanswerable")]
    scores = {q["text"]: retriever.component_scores(q["text"]) for q in questions}
    labelled = [(scores[q["text"]], topic_of(q["passage"])) for q in questions if _is_answerable(q)]
    weight, by_weight = choose_weight(labelled, topics)
    development: Dict[str, Any] = {"right_first_by_bm25_weight": by_weight}
    topic_weight = 0.0
    if retriever.topics is not None:
        topic_weight, development["right_first_by_topic_weight"] = choose_weight(labelled, topics, bm25_weight=weight)
    gates = [SCORE_GATE]
    if retriever.encoder is not None:
        gates.append(COSINE_GATE)
    if getattr(retriever, "coverage", None) is not None:
        gates.append(COVERAGE_GATE)
    by_gate = {gate: _thresholds(questions, _gated(retriever, questions, scores, weight, topic_weight, gate, topics),
                                 topic_of)
               for gate in gates}
    balance = {gate: np.mean([(m["right_and_answered"] + m["unanswerable_declined"]) / 2 for m in measured.values()] or [0.0])
               for gate, (_, measured) in by_gate.items()}
    gate = max(by_gate, key=lambda g: (round(balance[g], 6), -GATES.index(g)))
    thresholds, measured = by_gate[gate]
    development.update(measured)
    development["balance_by_gate"] = {g: round(float(b), 4) for g, b in balance.items()}
    context_weight = context_candidates = None
    if followups:
        context_weight, context_candidates, development["right_first_by_context"] = choose_context(
            retriever, exchanges(dev, followups), weight, topic_weight)
    return RetrievalFit(encoder, weight, thresholds, knowledge_fingerprint(passages), development,
                        topic_model=topic_model if retriever.topics is not None else None, topic_weight=topic_weight,
                        gate=gate, context_weight=context_weight, context_candidates=context_candidates)


def _gated(retriever: Any, questions: Sequence[Dict[str, Any]], scores: Dict[str, Scores], weight: float,
           topic_weight: float, gate: str, topics: Sequence[str]) -> Dict[str, Tuple[float, str]]:
    """Per question, what ``gate`` compares with its threshold (the best score, the best
    cosine, or the best coverage of the best few topics) and the topic it would answer with
    (the best by score; under the coverage gate, the best covered); ``topics``: one a passage."""
    gated: Dict[str, Tuple[float, str]] = {}
    for q in questions:
        score = combine(scores[q["text"]], weight, topic_weight)
        if gate == COVERAGE_GATE:
            _, shown, covered = retriever.covered(q["text"], best_per_topic(score, topics), q["language"])
            best = int(np.argmax(covered))
            gated[q["text"]] = (float(covered[best]), topics[shown[best]])
        else:
            value = score.max() if gate == SCORE_GATE else scores[q["text"]][1].max()
            gated[q["text"]] = (float(value), topics[int(score.argmax())])
    return gated


def _thresholds(questions: Sequence[Dict[str, Any]], gated: Dict[str, Tuple[float, str]], topic_of: Any
                ) -> Tuple[Dict[str, float], Dict[str, Any]]:
    """Each language's threshold on the gated values (:func:`_gated`) and its measures."""
    thresholds: Dict[str, float] = {}
    measured: Dict[str, Any] = {}
    for language in ("zh", "en"):
        mine = [q for q in questions if q["language"] == language]
        if not any(q["kind"] == "unanswerable" for q in mine) or not any(_is_answerable(q) for q in mine):
            continue  # nothing to balance: the retrieval settings' threshold stays
        thresholds[language], measured[language] = choose_threshold(
            [(gated[q["text"]][0], gated[q["text"]][1] == topic_of(q["passage"])) for q in mine if _is_answerable(q)],
            [gated[q["text"]][0] for q in mine if q["kind"] == "unanswerable"])
        measured[language]["questions"] = len(mine)
    return thresholds, measured
