"""Seeded typos for robustness benchmarks (``rasa-gpt bench intent --typos``): one
edit in one English word of each message, as a customer types in a hurry."""

import random
import string
from typing import List, Sequence

from rasa_gpt_components.nlu.spelling import MIN_LENGTH, WORD

KINDS = ("delete", "insert", "replace", "swap")


def with_typo(text: str, rng: random.Random) -> str:
    """``text`` with one edit (a letter deleted, inserted or replaced, or two neighbours
    swapped) inside one of its words of ``MIN_LENGTH`` letters or more, never the first
    letter; ``text`` itself when it has no such word (Chinese)."""
    words = [m for m in WORD.finditer(text) if len(m.group(0)) >= MIN_LENGTH]
    if not words:
        return text
    match = rng.choice(words)
    word = match.group(0)
    kind = rng.choice(KINDS)
    at = rng.randrange(1, len(word) - 1)  # inside the word: customers rarely miss the first letter
    letter = rng.choice(string.ascii_lowercase.replace(word[at].lower(), ""))
    if kind == "delete":
        typo = word[:at] + word[at + 1:]
    elif kind == "insert":
        typo = word[:at] + letter + word[at:]
    elif kind == "replace":
        typo = word[:at] + letter + word[at + 1:]
    elif word[at] != word[at + 1]:
        typo = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    else:  # swapping two equal letters changes nothing
        typo = word[:at] + word[at + 1:]
    return text[: match.start()] + typo + text[match.end():]


def with_typos(texts: Sequence[str], seed: int) -> List[str]:
    """Each text with one seeded typo (the same texts and seed give the same typos)."""
    rng = random.Random(seed)
    return [with_typo(text, rng) for text in texts]
