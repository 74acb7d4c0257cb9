"""Delivery of a hand-off to the agents' desk: one JSON POST, signed, with a
timeout and retries, in one of three formats:

- ``json``: ``{"type": "handoff", "id", "sent_at", "summary", "text"}``; the
  desk verifies the signature (``verify_signature``, docs/handoff.md);
- ``wecom``: a WeCom group robot's markdown message (its URL holds its key);
- ``slack``: a Slack incoming webhook's message (its URL is its secret).

Every request carries ``X-Handoff-Id`` (the same on every retry, so a desk can
drop a repeat), ``X-Handoff-Timestamp`` and, with a secret,
``X-Handoff-Signature: sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>." + body``.
The secret is read from the environment variable ``secret_env``, never from a
file. The outcome is counted in ``rasa_gpt_handoff_deliveries_total`` and
logged without the summary."""

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from rasa_gpt_components.handoff.summary import render
from rasa_gpt_components.metrics import HANDOFF_DELIVERIES, log_fields

logger = logging.getLogger(__name__)

FORMATS = ("json", "wecom", "slack")
WECOM_MAX_BYTES = 4096  # a WeCom robot's markdown content
SLACK_MAX_CHARS = 3000  # a Slack section block's text
MAX_RESPONSE_BYTES = 65536


@dataclass(frozen=True)
class WebhookSettings:
    """The ``handoff.webhook`` options of GenerativeNLG."""

    url: Optional[str] = None  # None: the summary is only stored in the tracker
    format: str = "json"
    secret_env: str = "RASA_GPT_HANDOFF_SECRET"
    timeout: float = 3.0  # seconds per attempt
    retries: int = 2  # attempts after the first, on a network error, a timeout, 408, 429 or 5xx
    backoff: float = 0.5  # seconds before the first retry, doubled each time

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"webhook format must be one of {', '.join(FORMATS)}, got '{self.format}'.")
        if self.url is not None and not str(self.url).startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got '{self.url}'.")
        if float(self.timeout) <= 0 or int(self.retries) < 0 or float(self.backoff) < 0:
            raise ValueError("webhook timeout must be positive, retries and backoff not negative.")

    @property
    def secret(self) -> str:
        return os.environ.get(self.secret_env or "", "")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Handoff-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     tolerance: float = 300.0, now: Callable[[], float] = time.time) -> bool:
    """What a desk does with a request: the signature matches (compared in constant
    time) and the timestamp is at most ``tolerance`` seconds away."""
    try:
        fresh = abs(now() - float(timestamp)) <= tolerance
    except (TypeError, ValueError):
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def _wecom_quote(text: str) -> str:
    # the customer's words must not turn into markdown links, colours or mentions
    safe = text.translate(str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "`": "'", "*": "＊"}))
    return f"“{safe}”"


def _slack_quote(text: str) -> str:
    safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"“{safe}”"


def _cut(text: str, limit: int, measure: Callable[[str], int]) -> str:
    while measure(text) > limit:
        text = text[: int(len(text) * 0.9)]
    return text


def payload(summary: Dict[str, Any], handoff_id: str, language: str, fmt: str) -> Dict[str, Any]:
    """The request body for ``fmt``."""
    if fmt == "wecom":
        content = _cut(render(summary, language, _wecom_quote), WECOM_MAX_BYTES, lambda t: len(t.encode("utf-8")))
        return {"msgtype": "markdown", "markdown": {"content": content}}
    if fmt == "slack":
        text = _cut(render(summary, language, _slack_quote), SLACK_MAX_CHARS, len)
        return {"text": text.split("\n", 1)[0],
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    return {"type": "handoff", "id": handoff_id, "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": summary, "text": render(summary, language)}


async def deliver(settings: WebhookSettings, body: Dict[str, Any], handoff_id: str) -> bool:
    """POST ``body`` to the desk, retrying what may pass next time; True when delivered."""
    import aiohttp

    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    attempts = 1 + int(settings.retries)
    outcome = "failed"
    for attempt in range(attempts):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Handoff-Id": handoff_id,
                   "X-Handoff-Timestamp": timestamp}
        if settings.secret:
            headers["X-Handoff-Signature"] = sign(settings.secret, timestamp, data)
        retry, problem = True, ""
        try:
            timeout = aiohttp.ClientTimeout(total=float(settings.timeout))
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(str(settings.url), data=data, headers=headers) as response:
                    answer = await response.content.read(MAX_RESPONSE_BYTES)
                    if 200 <= response.status < 300 and _accepted(settings.format, answer):
                        outcome = "delivered"
                        break
                    problem = f"HTTP {response.status}"
                    retry = response.status in (408, 429) or response.status >= 500 or response.status < 300
        except asyncio.TimeoutError:
            problem = "timeout"
        except aiohttp.ClientError as error:
            problem = type(error).__name__
        logger.warning("handoff delivery %s", log_fields(
            id=handoff_id, attempt=attempt + 1, of=attempts, problem=problem, retry=retry and attempt + 1 < attempts))
        if not retry:
            break
        if attempt + 1 < attempts:
            await asyncio.sleep(float(settings.backoff) * 2 ** attempt)
    HANDOFF_DELIVERIES.labels(settings.format, outcome).inc()
    level = logging.INFO if outcome == "delivered" else logging.ERROR
    logger.log(level, "handoff delivery %s", log_fields(id=handoff_id, outcome=outcome, format=settings.format))
    return outcome == "delivered"


def _accepted(fmt: str, answer: bytes) -> bool:
    """A 2xx is not enough for a WeCom robot: it answers errcode 0 when it took the message."""
    if fmt != "wecom":
        return True
    try:
        return json.loads(answer.decode("utf-8")).get("errcode") == 0
    except (ValueError, AttributeError):
        return False
