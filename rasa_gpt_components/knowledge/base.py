"""Reading the knowledge base: ``bot/knowledge/*.yml`` into passages.

One file holds FAQ entries and/or documents (docs/generative_fallback.md)::

    version: "1"
    faq:
      - id: shipping_time
        question: 下单后多久发货？
        paraphrases: [什么时候发货]        # optional
        answer: 现货商品付款后 48 小时内发货。
        language: zh                       # optional, detected otherwise
        topic: shipping_time               # optional, see below
    documents:
      - id: return_policy
        title: Return policy
        text: |
          First paragraph.

          Second paragraph.

A FAQ entry is one passage; a document is split at blank lines, and long
paragraphs at sentence ends, into passages of at most ``MAX_PASSAGE_CHARS``.

FAQ entries that say the same thing in different languages share a
**topic**: ``topic:`` when given, else the id without a final ``_zh`` /
``_en`` (``-zh`` / ``-en``) that matches the entry's language
(``password_reset_zh`` and ``password_reset_en`` are one topic). Retrieval
finds a topic through any of its versions and answers with the version in
the customer's language. A document's passages are their own topics.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from rasa_gpt_components.text import clean_text, detect_language, sentences
from rasa_gpt_components.yaml_files import YAMLFileError, read_yaml_file

MAX_PASSAGE_CHARS = 400
MAX_FILE_BYTES = 5_000_000
MAX_PASSAGES = 20_000


class KnowledgeBaseError(ValueError):
    """The knowledge base cannot be read; the message names the file and entry."""


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: a FAQ answer or a piece of a document."""

    id: str
    text: str  # what the answer may use
    title: str = ""  # the FAQ question or the document title
    paraphrases: tuple = ()
    language: str = "en"
    source: str = ""
    topic: str = ""  # shared by the versions of one entry in other languages; "" = its own id

    @property
    def topic_key(self) -> str:
        """The passage's topic: ``topic``, or its id when it has none."""
        return self.topic or self.id

    @property
    def forms(self) -> List[str]:
        """The ways the entry asks its question: the question and the paraphrases (not empty)."""
        return [form for form in (self.title, *self.paraphrases) if form]

    @property
    def search_text(self) -> str:
        """What retrieval matches a question against."""
        return " ".join([self.title, *self.paraphrases, self.text]).strip()


@dataclass
class KnowledgeBase:
    """All passages of a knowledge base, in file order."""

    passages: List[Passage] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "KnowledgeBase":
        """Read a ``.yml`` file or every ``*.yml`` / ``*.yaml`` file of a folder (sorted)."""
        root = Path(path)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
        elif root.is_file():
            files = [root]
        else:
            raise KnowledgeBaseError(f"Knowledge base '{root}' does not exist.")
        kb = cls()
        for file in files:
            kb.passages.extend(_read_file(file))
            if len(kb.passages) > MAX_PASSAGES:
                raise KnowledgeBaseError(f"More than {MAX_PASSAGES} passages in '{root}'.")
        ids = [p.id for p in kb.passages]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise KnowledgeBaseError(f"Passage ids are used twice in '{root}': {', '.join(duplicates[:5])}.")
        return kb

    def by_id(self, passage_id: str) -> Optional[Passage]:
        """The passage with this id, or None."""
        return next((p for p in self.passages if p.id == passage_id), None)

    def topic_of(self, passage_id: Optional[str]) -> Optional[str]:
        """The topic of the passage with this id (its versions in other languages share
        it); an id this knowledge base does not have is its own topic."""
        passage = self.by_id(passage_id) if passage_id else None
        return passage.topic_key if passage else passage_id


def _read_file(file: Path) -> List[Passage]:
    if file.stat().st_size > MAX_FILE_BYTES:
        raise KnowledgeBaseError(f"{file}: larger than {MAX_FILE_BYTES // 1_000_000} MB.")
    try:
        data = read_yaml_file(file) or {}
    except YAMLFileError as error:  # it names the file
        raise KnowledgeBaseError(f"{error}.") from None
    if not isinstance(data, dict):
        raise KnowledgeBaseError(f"{file}: expected a mapping with 'faq' and/or 'documents'.")
    unknown = set(data) - {"version", "faq", "documents"}
    if unknown:
        raise KnowledgeBaseError(f"{file}: unknown keys {sorted(unknown)}; use 'faq' and 'documents'.")
    passages = [_faq(file, k, e) for k, e in enumerate(_entries(file, data, "faq"))]
    for k, entry in enumerate(_entries(file, data, "documents")):
        passages.extend(_document(file, k, entry))
    return passages


def _entries(file: Path, data: Dict[str, Any], key: str) -> Iterable[Dict[str, Any]]:
    entries = data.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KnowledgeBaseError(f"{file}: '{key}' must be a list of mappings.")
    return entries


def _field(file: Path, where: str, entry: Dict[str, Any], key: str, required: bool = True) -> str:
    value = clean_text(entry.get(key, ""), max_chars=20_000)
    if required and not value:
        raise KnowledgeBaseError(f"{file}: {where} has no '{key}'.")
    return value


def _language(entry: Dict[str, Any], text: str) -> str:
    language = str(entry.get("language") or detect_language(text))
    return language if language in ("zh", "en") else detect_language(text)


def _faq(file: Path, index: int, entry: Dict[str, Any]) -> Passage:
    where = f"faq entry {index + 1}"
    question = _field(file, where, entry, "question")
    answer = _field(file, where, entry, "answer")
    paraphrases = entry.get("paraphrases") or []
    if not isinstance(paraphrases, list):
        raise KnowledgeBaseError(f"{file}: {where}: 'paraphrases' must be a list.")
    passage_id = str(entry.get("id") or f"{file.stem}/faq-{index + 1}")
    language = _language(entry, question + answer)
    return Passage(
        id=passage_id,
        text=answer,
        title=question,
        paraphrases=tuple(clean_text(p) for p in paraphrases if clean_text(p)),
        language=language,
        source=file.name,
        topic=str(entry.get("topic") or "") or _topic_of(passage_id, language),
    )


def _topic_of(passage_id: str, language: str) -> str:
    """``password_reset`` for ``password_reset_zh`` in Chinese; the id itself otherwise."""
    for separator in ("_", "-"):
        if passage_id.endswith(separator + language) and len(passage_id) > len(language) + 1:
            return passage_id[: -len(language) - 1]
    return passage_id


def _document(file: Path, index: int, entry: Dict[str, Any]) -> List[Passage]:
    where = f"document {index + 1}"
    raw = str(entry.get("text") or "")
    if not raw.strip():
        raise KnowledgeBaseError(f"{file}: {where} has no 'text'.")
    title = _field(file, where, entry, "title", required=False)
    doc_id = str(entry.get("id") or f"{file.stem}/doc-{index + 1}")
    language = _language(entry, title + raw)
    pieces = [piece for paragraph in re.split(r"\n\s*\n", raw) for piece in split_passage(paragraph)]
    return [
        Passage(id=f"{doc_id}#{k + 1}", text=piece, title=title, language=language, source=file.name)
        for k, piece in enumerate(pieces)
    ]


def split_passage(paragraph: str, limit: int = MAX_PASSAGE_CHARS) -> List[str]:
    """Cut a paragraph at sentence ends into pieces of at most ``limit`` characters
    (a single longer sentence is cut hard)."""
    text = clean_text(paragraph, max_chars=20_000)
    if not text:
        return []
    pieces: List[str] = []
    current = ""
    for sentence in (s.strip() for s in sentences(text) if s.strip()):
        while len(sentence) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        joiner = "" if not current or detect_language(current[-1:]) == "zh" else " "
        if len(current) + len(joiner) + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = current + joiner + sentence if current else sentence
    if current:
        pieces.append(current)
    return pieces
