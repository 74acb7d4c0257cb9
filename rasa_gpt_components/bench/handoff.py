"""``rasa-gpt bench handoff``: scripted conversations that end in a hand-off,
through a trained bot (Rasa's Agent in this process, its action server running),
and the summary the agents' desk receives.

    cd bot && rasa run actions &          # the bot's action server
    rasa-gpt bench handoff --model bot/models/<model>.tar.gz --endpoints bot/endpoints.yml \\
        --conversations bot/benchmark/handoff_conversations.yml --out DIR

The benchmark is the desk: an HTTP server on 127.0.0.1 that verifies each
request's signature; the NLG's ``handoff.webhook`` is pointed at it (format
``json``, a fresh secret). Conversations file: ``{"conversations": [{id,
language, ends: request|offer, turns: [...], facts: {order_numbers, products,
actions, request}}]}``.

Measures (``MEASURES``), for the summary and, as the baseline, for what an agent
gets without one: the last ``transcript_messages`` messages of the conversation.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import time
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from rasa_gpt_components.bench import report

MEASURES = {
    "handed_off": "conversations whose summary reached the desk (signature verified)",
    "fact_recall": "over the conversations handed off: facts of the conversation found in what the agent gets: order numbers, products, the "
    "request (a verbatim piece of the customer's words), the customer's language; and the actions the bot "
    "ran (counted only when they ran: an action the script expected but the bot did not run is a bot miss)",
    "invented": "order numbers, URLs, phone numbers and product words in what the agent gets that appear "
    "nowhere in the conversation",
    "summary_chars": "length of the worded summary (the desk's `text`)",
    "delivery_ms": "from sending the customer's last message until the desk had the summary",
}
ORDER = re.compile(r"(?<![A-Za-z0-9])[Ee][Ss][ -]?(\d{10})(?!\d)")
URL = re.compile(r"https?://[^\s\"'“”]+")
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)400-?\d{3}-?\d{4}(?!\d)")


class Desk:
    """The agents' desk: keeps every verified hand-off with the time it arrived."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: List[Dict[str, Any]] = []
        self.rejected = 0
        self.url = ""
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        from rasa_gpt_components.handoff.webhook import verify_signature

        async def handle(request: "web.Request") -> "web.Response":
            body = await request.read()
            if not verify_signature(self.secret, request.headers.get("X-Handoff-Timestamp", ""), body,
                                    request.headers.get("X-Handoff-Signature", "")):
                self.rejected += 1
                return web.json_response({"error": "bad signature"}, status=401)
            self.received.append({"at": time.monotonic(), "body": json.loads(body)})
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/desk", handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/desk"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def for_conversation(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        for item in self.received:
            if item["body"].get("summary", {}).get("conversation_id") == conversation_id:
                return item
        return None


def load_conversations(path: Path) -> List[Dict[str, Any]]:
    from rasa.shared.utils.io import read_yaml_file

    data = read_yaml_file(path) or {}
    conversations = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(conversations, list) or not conversations:
        raise ValueError(f"{path}: expected a 'conversations' list.")
    for c in conversations:
        missing = {"id", "language", "ends", "turns", "facts"} - set(c)
        if missing:
            raise ValueError(f"{path}: conversation {c.get('id', '?')} lacks {sorted(missing)}.")
    return conversations


def _norm(text: str) -> str:
    """Compared as the plugin cleans text (NFKC: full-width commas become ","), without spaces or case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _orders(text: str) -> set:
    return {"ES" + m.group(1) for m in ORDER.finditer(text)}


def check(conversation: Dict[str, Any], got: str, ran: Sequence[str], said: str, language: Optional[str],
          product_words: Sequence[str]) -> Dict[str, Any]:
    """Facts found and missed in ``got`` (what the agent gets), bot misses, invented facts."""
    facts = conversation["facts"] or {}
    flat = _norm(got)
    found, missed, bot_missed = [], [], []
    for kind in ("order_numbers", "products"):
        for value in facts.get(kind) or []:
            (found if _norm(value) in flat or (kind == "order_numbers" and value in _orders(got)) else missed).append(
                f"{kind}:{value}")
    if facts.get("request"):
        (found if _norm(facts["request"]) in flat else missed).append(f"request:{facts['request']}")
    for action in facts.get("actions") or []:
        if action not in ran:
            bot_missed.append(f"action:{action}")
        else:
            (found if action in got else missed).append(f"action:{action}")
    (found if language == conversation["language"] else missed).append(f"language:{conversation['language']}")
    spoken = _norm(said)
    invented = sorted(
        {f"order:{o}" for o in _orders(got) - _orders(said)}
        | {f"url:{u}" for u in URL.findall(got) if _norm(u) not in spoken}
        | {f"phone:{p}" for p in PHONE.findall(got) if _norm(p) not in spoken}
        | {f"product:{w}" for w in product_words if _norm(w) in flat and _norm(w) not in spoken}
    )
    return {"found": found, "missed": missed, "bot_missed": bot_missed, "invented": invented}


async def run_conversation(agent: Any, desk: Desk, conversation: Dict[str, Any], sender: str,
                           wait: float) -> Dict[str, Any]:
    """Send the turns one after the other; then wait for the desk."""
    replies: List[List[str]] = []
    sent_last = time.monotonic()
    for text in conversation["turns"]:
        sent_last = time.monotonic()
        answer = await agent.handle_text(text, sender_id=sender) or []
        replies.append([r.get("text") or "" for r in answer])
    deadline = time.monotonic() + wait
    while desk.for_conversation(sender) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    arrived = desk.for_conversation(sender)
    tracker = await agent.tracker_store.retrieve(sender)
    events = [e.as_dict() for e in tracker.events] if tracker else []
    return {"replies": replies, "arrived": arrived, "sent_last": sent_last, "events": events}


def transcript_tail(events: Sequence[Dict[str, Any]], messages: int) -> str:
    """The baseline: the last ``messages`` messages, as an agent's screen shows them."""
    said = [f"{'customer' if e['event'] == 'user' else 'bot'}: {e.get('text')}"
            for e in events if e.get("event") in ("user", "bot") and e.get("text")]
    return "\n".join(said[-messages:])


def score(conversations: Sequence[Dict[str, Any]], results: Sequence[Dict[str, Any]], transcript_messages: int,
          product_words: Sequence[str]) -> Dict[str, Any]:
    rows, per = {"summary": [], "transcript": []}, []
    chars, delivery = [], []
    for conversation, result in zip(conversations, results):
        events = result["events"]
        ran = [e.get("name") for e in events if e.get("event") == "action"]
        said = "\n".join(str(e.get("text")) for e in events if e.get("event") in ("user", "bot") and e.get("text"))
        arrived = result["arrived"]
        body = arrived["body"] if arrived else {}
        summary = body.get("summary") or {}
        got = json.dumps(summary, ensure_ascii=False) + "\n" + (body.get("text") or "") if arrived else ""
        mine = check(conversation, got, ran, said, summary.get("language"), product_words)
        tail = transcript_tail(events, transcript_messages) if arrived else ""  # no hand-off: nothing at all
        from rasa_gpt_components.text import message_language

        tail_language = message_language(" ".join(conversation["turns"]))  # what an agent reads off the messages
        theirs = check(conversation, tail, ran, said, tail_language, product_words)
        rows["summary"].append(mine)
        rows["transcript"].append(theirs)
        if arrived:
            chars.append(len(body.get("text") or ""))
            delivery.append(1000 * (arrived["at"] - result["sent_last"]))
        offered = any(e.get("event") == "action" and e.get("name") == "utter_offer_human" for e in events)
        intents = [(e.get("parse_data") or {}).get("intent", {}).get("name") for e in events if e.get("event") == "user"]
        per.append({"id": conversation["id"], "language": conversation["language"], "ends": conversation["ends"],
                    "intents": intents,
                    "handed_off": bool(arrived), "offered": offered, "summary": mine, "transcript": theirs,
                    "replies": result["replies"]})
    data: Dict[str, Any] = {"conversations": per}
    for language in ("zh", "en", "all"):
        pick = [i for i, c in enumerate(conversations) if language in ("all", c["language"])]
        block: Dict[str, Any] = {"conversations": len(pick),
                                 "handed_off": sum(per[i]["handed_off"] for i in pick),
                                 "offers_made": sum(per[i]["offered"] for i in pick if per[i]["ends"] == "offer"),
                                 "offer_conversations": sum(per[i]["ends"] == "offer" for i in pick)}
        handed = [i for i in pick if per[i]["handed_off"]]  # without a hand-off the agent gets nothing
        for name, checked in rows.items():
            found = sum(len(checked[i]["found"]) for i in handed)
            missed = sum(len(checked[i]["missed"]) for i in handed)
            block[name] = {"fact_recall": round(found / max(found + missed, 1), 4) if handed else None,
                           "facts": found + missed, "missed": missed,
                           "bot_missed": sum(len(checked[i]["bot_missed"]) for i in handed),
                           "invented": sum(len(checked[i]["invented"]) for i in handed)}
        data[language] = block
    data["summary_chars"] = {"p50": report.percentile(chars, 50) if chars else None,
                             "p95": report.percentile(chars, 95) if chars else None}
    data["delivery_ms"] = {"p50": report.percentile(delivery, 50) if delivery else None,
                           "p95": report.percentile(delivery, 95) if delivery else None,
                           "max": round(max(delivery), 1) if delivery else None}
    return data


def product_vocabulary(conversations: Sequence[Dict[str, Any]]) -> List[str]:
    return sorted({p for c in conversations for p in (c["facts"] or {}).get("products") or []})


async def bench(args: argparse.Namespace, conversations: List[Dict[str, Any]]) -> Dict[str, Any]:
    from rasa.core.agent import Agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    import logging

    for name in ("rasa", "rasa_gpt_components", "aiohttp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    secret = secrets.token_hex(16)
    os.environ["RASA_GPT_HANDOFF_SECRET"] = secret
    desk = Desk(secret)
    await desk.start()
    endpoints = AvailableEndpoints.read_endpoints(args.endpoints)
    if endpoints.nlg is None:
        raise SystemExit(f"{args.endpoints}: no nlg endpoint; the bench needs GenerativeNLG.")
    nlg = dict(endpoints.nlg.kwargs)
    if "knowledge" in nlg and not Path(nlg["knowledge"]).is_absolute():
        nlg["knowledge"] = str(Path(args.endpoints).resolve().parent / nlg["knowledge"])
    handoff = dict(nlg.get("handoff") or {})
    handoff["webhook"] = {**(handoff.get("webhook") or {}), "url": desk.url, "format": "json",
                          "secret_env": "RASA_GPT_HANDOFF_SECRET"}
    nlg["handoff"] = handoff
    generator = EndpointConfig(type=endpoints.nlg.type, **nlg)
    agent = Agent.load(args.model, generator=generator, action_endpoint=endpoints.action)
    results = []
    run_id = secrets.token_hex(3)
    try:
        for number, conversation in enumerate(conversations, 1):
            sender = f"bench-{conversation['id']}-{run_id}"
            results.append(await run_conversation(agent, desk, conversation, sender, args.wait))
            print(f"[{number}/{len(conversations)}] {conversation['id']}: "
                  f"{'handed off' if results[-1]['arrived'] else 'NO hand-off'}", flush=True)
        transcript = int((handoff.get("transcript_messages") or 6))
        data = score(conversations, results, transcript, product_vocabulary(conversations))
        data["desk_rejected"] = desk.rejected
        data["transcript_messages"] = transcript
    finally:
        await desk.stop()
    return data


def write_markdown(path: Path, data: Dict[str, Any]) -> None:
    lines = ["# Hand-off benchmark", "", f"`{data['command']}`, {data['date']}", "",
             f"Machine: {data['machine']}", "",
             "What the agent gets: the summary (GenerativeNLG's hand-off) against the baseline, the last "
             f"{data['transcript_messages']} messages of the conversation.", ""]
    rows = []
    for language in ("zh", "en", "all"):
        block = data[language]
        for name in ("summary", "transcript"):
            b = block[name]
            rows.append([language, name, f"{block['handed_off']}/{block['conversations']}",
                         f"{block['offers_made']}/{block['offer_conversations']}",
                         report.fmt(b["fact_recall"]), b["facts"], b["missed"], b["bot_missed"], b["invented"]])
    lines.append(report.markdown_table(["language", "agent gets", "handed off", "offers made (offer scripts)",
                                        "fact recall", "facts", "missed", "bot misses", "invented"], rows))
    lines += ["", f"Summary length (chars): p50 {data['summary_chars']['p50']}, p95 {data['summary_chars']['p95']}.",
              f"Delivery (last message sent -> desk has the summary, ms): p50 {data['delivery_ms']['p50']}, "
              f"p95 {data['delivery_ms']['p95']}, max {data['delivery_ms']['max']}.",
              f"Requests with a bad signature at the desk: {data['desk_rejected']}.", "", "## Measures", ""]
    lines += [f"- **{k}**: {v}" for k, v in MEASURES.items()]
    lines += ["", "## Misses of the summary", ""]
    for c in data["conversations"]:
        s = c["summary"]
        if s["missed"] or s["invented"] or s["bot_missed"] or not c["handed_off"]:
            lines.append(f"- {c['id']} ({c['ends']}, intents {' > '.join(map(str, c['intents']))}): "
                         f"handed off {c['handed_off']}, offered {c['offered']}; "
                         f"missed {s['missed']}, bot missed {s['bot_missed']}, invented {s['invented']}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    conversations = load_conversations(Path(args.conversations))
    if args.limit:
        conversations = conversations[: args.limit]
    out = Path(args.out)
    data = asyncio.run(bench(args, conversations))
    report.publish(out, args, data, write_markdown)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench handoff``."""
    parser.add_argument("--model", required=True, help="trained bot model (.tar.gz)")
    parser.add_argument("--endpoints", default="bot/endpoints.yml", help="the bot's endpoints.yml (nlg, action server)")
    parser.add_argument("--conversations", default="bot/benchmark/handoff_conversations.yml")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the desk after the last turn")
    parser.add_argument("--limit", type=int, default=0, help="only the first N conversations (0: all)")
