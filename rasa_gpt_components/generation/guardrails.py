"""Guardrails: small checks on the user's message and on a generated answer.

Each check is a function that takes the text and what it needs, and returns a
:class:`Verdict`: the (possibly shortened) text, and why it was changed or
refused. :func:`check_answer` runs the output checks in order; any refusal
means the caller sends its safe template instead.

- ``blocklist``: words that must not be answered (input) or said (output),
  matched case-insensitively as substrings (as Dialogflow CX's banned phrases).
- ``prompt_disclosure``: the answer repeats a run of the system prompt or talks
  about its instructions.
- ``invented_entities``: URLs, phone numbers and order numbers that are not in
  the retrieved passages; the sentences that carry them are dropped.
- ``repetition``: the answer starts repeating itself; it is cut before the repeat.
- ``unsupported``: the answer states a number that is not in the passages,
  or too few of its words come from them (a small model's invented facts:
  "2-4 weeks" for "2-4 days", a CEO's made-up name). Only the passages count
  as support, never the customer's own words.
- ``echo``: the answer repeats the question ("i want to learn about nlu" ->
  "i want to learn about nlu").
- ``contradiction``: a sentence of the answer says what a passage sentence
  says, with the negation turned around ("The project is not open source." for
  "The project is open source.", "支持退货" for "不支持退货").
- ``max_length``: at most ``max_chars``, cut at the last sentence end.
"""

import re
from dataclasses import dataclass, field
from typing import Iterable, List, Sequence, Set, Tuple

from rasa_gpt_components.text import TOKEN, clean_text, sentences, tokens, up_to_last_sentence_end, words

DEFAULT_BLOCKLIST = (
    "傻逼", "操你", "去死", "fuck", "shit", "bitch", "kill yourself",
)
# how the model might announce its own instructions
DISCLOSURE_PHRASES = (
    "system prompt", "my instructions", "i was instructed", "i am instructed", "as instructed",
    "系统提示", "我的指令", "提示词", "我被要求",
)
_URL = re.compile(r"(?:https?://|www\.)[^\s，。、）)\]]+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|net|org|io|co|info|top|xyz)\b", re.I)
_PHONE = re.compile(r"(?<![\w])(?:\+?\d{1,3}[\s-]?)?(?:\(?\d{2,4}\)?[\s-]?)?\d{3,4}[\s-]?\d{4}(?![\w])")
_ORDER = re.compile(r"(?<![\w])#?[A-Za-z]{0,4}\d{5,}(?![\w])")


@dataclass
class Verdict:
    """The text after a check; ``refused`` means: do not send it."""

    text: str
    refused: bool = False
    reasons: List[str] = field(default_factory=list)


def blocked_words(text: str, blocklist: Iterable[str]) -> List[str]:
    """The blocklist entries found in ``text``."""
    lowered = text.lower()
    return [word for word in blocklist if word and word.lower() in lowered]


def check_input(text: str, blocklist: Sequence[str] = DEFAULT_BLOCKLIST) -> Verdict:
    """Whether a user message may be answered by the model at all."""
    found = blocked_words(text, blocklist)
    if found:
        return Verdict(text, True, ["input_blocklist"])
    return Verdict(text)


def entities(text: str) -> Set[str]:
    """URLs, phone numbers and order numbers in ``text``, normalised (URLs lower
    case without a trailing dot, numbers as digits only)."""
    found: Set[str] = set()
    for match in _URL.finditer(text):
        found.add("url:" + match.group().lower().rstrip(".").removeprefix("https://").removeprefix("http://"))
    for pattern, kind in ((_PHONE, "number"), (_ORDER, "number")):
        for match in pattern.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if len(digits) >= 5:
                found.add(f"{kind}:{digits}")
    return found


def _allowed(entity: str, sources: Set[str], source_digits: str) -> bool:
    if entity in sources:
        return True
    kind, _, value = entity.partition(":")
    if kind == "number":
        return value in source_digits  # "400-820-8820" in a passage allows "4008208820"
    return any(entity in s or s in entity for s in sources if s.startswith("url:"))


def _sources(passages: Sequence[str]) -> Tuple[Set[str], str]:
    """The passages' entities, and all their digits (for numbers written differently)."""
    found = set().union(*(entities(p) for p in passages)) if passages else set()
    return found, " ".join(re.sub(r"\D", "", p) for p in passages)


def invented_entities(text: str, passages: Sequence[str]) -> List[str]:
    """The URLs, phone and order numbers of ``text`` that no passage has."""
    sources, digits = _sources(passages)
    return sorted(e for e in entities(text) if not _allowed(e, sources, digits))


def drop_invented_entities(text: str, passages: Sequence[str]) -> Verdict:
    """Drop every sentence that has a URL, phone or order number that no passage has."""
    sources, digits = _sources(passages)
    kept, dropped = [], False
    for sentence in sentences(text):
        if any(not _allowed(e, sources, digits) for e in entities(sentence)):
            dropped = True
        else:
            kept.append(sentence)
    if not dropped:
        return Verdict(text)
    rest = "".join(kept).strip()
    return Verdict(rest, refused=not rest, reasons=["invented_entities"])


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def support(text: str, sources: Sequence[str]) -> Tuple[float, List[str]]:
    """How grounded ``text`` is in ``sources`` (passages and the question): the
    share of its words found there, and its numbers found nowhere there."""
    known = set(words(" ".join(sources)))
    said = words(text)
    share = sum(w in known for w in said) / len(said) if said else 1.0
    source_numbers = {n for s in sources for n in _NUMBER.findall(s)}
    return share, [n for n in _NUMBER.findall(text) if n not in source_numbers]


ECHO_SHARE = 0.8  # share of an answer's tokens that are the question's: an echo
_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|can't|won't|don't|doesn't|isn't|aren't|wasn't|weren't|shouldn't|"
    r"couldn't|wouldn't|hasn't|haven't|didn't|without)\b|n't|[不没无未非别勿]", re.I)
CONTRADICTION_OVERLAP = 0.6  # share of a sentence's words (negations aside) in a passage sentence


def echoes_question(text: str, question: str) -> bool:
    """Whether the answer is mostly the customer's question said back (3+ tokens)."""
    said = [t.lower() for t in tokens(text)]
    asked = {t.lower() for t in tokens(question)}
    return len(said) >= 3 and bool(asked) and sum(t in asked for t in said) / len(said) >= ECHO_SHARE


# Chinese words that carry a negation character but negate nothing
_NOT_NEGATIONS = re.compile(r"非常|无线|无论|不管|未来|别人|别的|不仅|不但|不错|不断|不少|并不是不")


def _negated(sentence: str) -> bool:
    return len(_NEGATION.findall(_NOT_NEGATIONS.sub(" ", sentence))) % 2 == 1


def _content(sentence: str) -> Set[str]:
    return set(words(_NEGATION.sub(" ", _NOT_NEGATIONS.sub(" ", sentence.lower()))))


def contradicts(text: str, passages: Sequence[str]) -> bool:
    """Whether a sentence of ``text`` turns around the negation of a passage sentence
    it otherwise repeats (at least ``CONTRADICTION_OVERLAP`` of its words)."""
    said_sentences = [s for s in sentences(text) if _content(s)]
    source_sentences = [s for p in passages for s in sentences(p) if _content(s)]
    for said in said_sentences:
        mine = _content(said)
        for source in source_sentences:
            theirs = _content(source)
            if len(mine & theirs) / len(mine) >= CONTRADICTION_OVERLAP and _negated(said) != _negated(source):
                if len(mine & theirs) / max(len(theirs), 1) >= 0.3:  # about the same thing, not a word or two
                    return True
    return False


def check_support(text: str, sources: Sequence[str], min_support: float) -> Verdict:
    """Refuse an answer with a number from nowhere or too few grounded words."""
    share, numbers = support(text, sources)
    if numbers or share < min_support:
        return Verdict(text, True, ["unsupported"])
    return Verdict(text)


def ngrams(text: str, size: int) -> List[str]:
    """Word n-grams for spaced text, character n-grams for Chinese."""
    said = tokens(text)
    return [" ".join(said[i : i + size]) for i in range(len(said) - size + 1)]


def discloses_prompt(text: str, system_prompt: str, run: int = 8) -> bool:
    """True when ``text`` repeats ``run`` consecutive words (or Chinese characters)
    of the system prompt, or announces its instructions."""
    lowered = text.lower()
    if any(phrase in lowered for phrase in DISCLOSURE_PHRASES):
        return True
    prompt_grams = set(ngrams(system_prompt, run))
    return any(gram in prompt_grams for gram in ngrams(text, run))


def cut_repetition(text: str, size: int = 4) -> Verdict:
    """Cut the text before the first sentence that is a repeat, or before an
    n-gram's third appearance."""
    parts = sentences(text)
    seen: Set[str] = set()
    for index, sentence in enumerate(parts):
        key = sentence.lower().strip("。！？!?；;. \n")
        if key and key in seen:
            return Verdict("".join(parts[:index]).strip(), reasons=["repetition"])
        seen.add(key)
    counts: dict = {}
    found = list(TOKEN.finditer(text))
    for i in range(len(found) - size + 1):
        gram = tuple(t.group().lower() for t in found[i : i + size])
        counts[gram] = counts.get(gram, 0) + 1
        if counts[gram] == 3:
            # cut before the third appearance: keep the text up to token i
            prefix = text[: found[i - 1].end()] if i else ""
            return Verdict(up_to_last_sentence_end(prefix) or prefix.strip(), reasons=["repetition"])
    return Verdict(text)


def limit_length(text: str, max_chars: int) -> Verdict:
    """At most ``max_chars``: cut at the last sentence end inside the limit
    (hard cut with an ellipsis when there is none)."""
    if len(text) <= max_chars:
        return Verdict(text)
    head = text[:max_chars]
    cut = up_to_last_sentence_end(head)
    return Verdict(cut or head[: max_chars - 1].rstrip() + "…", reasons=["max_length"])


def check_answer(
    text: str,
    passages: Sequence[str],
    system_prompt: str,
    max_chars: int = 300,
    blocklist: Sequence[str] = DEFAULT_BLOCKLIST,
    question: str = "",
    min_support: float = 0.0,
) -> Verdict:
    """All output checks in order; the verdict's text is what may be sent.
    ``min_support`` > 0 turns on the grounding check (:func:`check_support`).
    The model's ``text`` is cleaned here, where it enters; ``passages``,
    ``system_prompt`` and ``question`` are clean already."""
    verdict = Verdict(clean_text(text))
    if not verdict.text:
        return Verdict("", True, ["empty"])
    if blocked_words(verdict.text, blocklist):
        return Verdict(verdict.text, True, ["output_blocklist"])
    if discloses_prompt(verdict.text, system_prompt):
        return Verdict(verdict.text, True, ["prompt_disclosure"])
    for step in (
        lambda t: cut_repetition(t),
        lambda t: drop_invented_entities(t, passages),
        lambda t: limit_length(t, max_chars),
        lambda t: Verdict(t, True, ["echo"]) if question and echoes_question(t, question) else Verdict(t),
        lambda t: Verdict(t, True, ["contradiction"]) if contradicts(t, passages) else Verdict(t),
        # only the passages ground an answer: the customer's words are not a source
        lambda t: check_support(t, passages, min_support) if min_support > 0 else Verdict(t),
    ):
        result = step(verdict.text)
        verdict = Verdict(result.text, result.refused, verdict.reasons + result.reasons)
        if verdict.refused or not verdict.text:
            return Verdict(verdict.text, True, verdict.reasons or ["empty"])
    if not re.search(r"[^\W_]", verdict.text):  # punctuation only
        return Verdict(verdict.text, True, verdict.reasons + ["empty"])
    return verdict
