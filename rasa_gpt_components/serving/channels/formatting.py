"""Turning a bot's replies into text a messaging app accepts: buttons as numbered
lines, long answers split at natural boundaries to fit a byte limit."""

import re
from typing import Any, Dict, List, Optional, Sequence

_BREAKS = [re.compile(r"(?<=\n\n)"), re.compile(r"(?<=\n)"), re.compile(r"(?<=[。！？!?；;])|(?<=[.] )"),
           re.compile(r"(?<=[，,、 ])")]


def buttons_as_text(text: str, buttons: Sequence[Dict[str, Any]]) -> str:
    """``text`` followed by one numbered line per button ("1. Yes")."""
    lines = [text] if text else []
    lines += [f"{number}. {button.get('title', '')}" for number, button in enumerate(buttons, 1)]
    return "\n".join(lines)


def chosen_button(text: str, buttons: Optional[Sequence[Dict[str, Any]]]) -> Optional[str]:
    """The payload of the button a reply like "2" picks, if it picks one."""
    number = text.strip().rstrip(".、")
    if buttons and number.isdigit() and 1 <= int(number) <= len(buttons):
        return buttons[int(number) - 1].get("payload") or buttons[int(number) - 1].get("title")
    return None


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _hard_split(text: str, limit: int) -> List[str]:
    parts, current = [], ""
    for char in text:
        if current and _size(current + char) > limit:
            parts.append(current)
            current = ""
        current += char
    return parts + ([current] if current else [])


def _split(text: str, limit: int, level: int) -> List[str]:
    if _size(text) <= limit:
        return [text]
    if level == len(_BREAKS):
        return _hard_split(text, limit)
    pieces = [p for p in _BREAKS[level].split(text) if p]
    chunks, current = [], ""
    for piece in pieces:
        if current and _size(current + piece) > limit:
            chunks.append(current)
            current = ""
        if _size(piece) > limit:
            chunks.extend(_split(piece, limit, level + 1))
        else:
            current += piece
    return chunks + ([current] if current else [])


def split_message(text: str, limit_bytes: int) -> List[str]:
    """Split ``text`` into parts of at most ``limit_bytes`` UTF-8 bytes, preferring
    paragraph, line, sentence and then clause boundaries; nothing is dropped except
    white space at the cut points."""
    if limit_bytes < 4:
        raise ValueError("limit_bytes must hold at least one character (4 bytes)")
    parts = [part.strip() for part in _split(text, limit_bytes, 0)]
    return [part for part in parts if part]


def join_replies(texts: Sequence[str]) -> str:
    """The bot's replies to one message as one text, a blank line between them."""
    return "\n\n".join(text.strip() for text in texts if text and text.strip())
