"""Cleaning untrusted message text before it reaches a model."""

import re
import unicodedata

MAX_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"\s+")


def clean_text(text: object, max_chars: int = MAX_CHARS) -> str:
    """Normalise a message for a model: NFKC, no control characters, collapsed
    white space, at most ``max_chars`` characters. Never raises."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    text = text[: max_chars * 2]  # bound the work before normalising
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return _SPACES.sub(" ", text).strip()[:max_chars]
