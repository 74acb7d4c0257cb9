"""``rasa-gpt bench load``: many concurrent multi-turn conversations through the
REST channel of a running bot, then a check of its tracker store.

    rasa-gpt bench load --url http://127.0.0.1:5005 --conversations 20 --turns 8 --out DIR

Every conversation is a script of turns in one language (Chinese and English
alternate), sent like a customer types: the next message only after the reply
to the previous one arrived; all conversations run at the same time. Turns are
labelled by the script: *generative* turns are knowledge-base questions that
the reference bot (bot/) answers through GenerativeNLG, the others are
greetings, order lookups, recommendations, thanks, goodbyes. No turn starts a
form. Afterwards every conversation's tracker is read through Rasa's HTTP API
(the server runs with ``--enable-api``) and compared with what was sent and
received.

Several ``--url`` spread the conversations round-robin over the instances
(``--spread-turns``: each conversation's successive turns alternate too, for a
scale-out test with a shared tracker store and lock store); ``--tracker-url``
says which instance the trackers are read from.

Writes report.json, report.md and turns.json (every turn) into ``--out``;
exit code 0 when every check in ``checks`` passed, 1 otherwise, 2 when the
bot or its HTTP API cannot be used.
"""

import argparse
import asyncio
import random
import secrets
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from rasa_gpt_components.bench import report

if TYPE_CHECKING:  # imported when used: `rasa-gpt` builds every bench's options
    import aiohttp
    from tqdm import tqdm

ORDERS = ["ES2611210006", "ES2611200002", "ES2611240003", "ES2611250004", "ES2611050005"]

# Turn templates by kind and language; "{order}" becomes one of ORDERS. Each was
# checked against the trained reference bot: no template starts the refund or the
# address form, and every "kb" template is answered by GenerativeNLG
# (utter_knowledge_answer or utter_generative_fallback). The "kb" questions are
# from the development set bot/benchmark/fallback_dev.yml (never from the held-out
# bot/benchmark/fallback_questions.yml), answerable and unanswerable ones.
TEMPLATES: Dict[str, Dict[str, List[str]]] = {
    "greet": {
        "zh": ["你好", "您好，在吗"],
        "en": ["hello", "hi there"],
    },
    "order": {
        "zh": ["我的订单 {order} 到哪了？", "帮我查下订单{order}", "{order} 这个订单发货了吗", "查一下订单 {order}"],
        "en": ["where is order {order}?", "can you check order {order} for me", "has {order} shipped yet?",
               "what's the status of my order {order}"],
    },
    "bot": {
        "zh": ["你是机器人吗", "我是在跟真人聊天吗"],
        "en": ["are you a bot?", "am I talking to a real person?"],
    },
    "recommend": {
        "zh": ["有什么推荐的吗", "我喜欢电子产品"],
        "en": ["can you recommend something", "I like electronics"],
    },
    "thanks": {
        "zh": ["谢谢", "好的，谢谢你"],
        "en": ["thanks", "thank you so much"],
    },
    "goodbye": {
        "zh": ["再见", "拜拜"],
        "en": ["bye", "goodbye, have a nice day"],
    },
    "kb": {
        "zh": [
            "重置密码一直提示格式不对，新密码到底要几位？",
            "国庆放假期间打kf热线有人接吗",
            "当你们会员要不要交年费？",
            "昨天下的单今天已经发出来了，突然又不想要了，还能取消吗",
            "手机自带的充电头用了五个月就坏了，还在保修期内吗？",
            "用国外银行发的visa卡付款会另外收货币转换费吗",
            "一个订单能不能用两张银行卡分开付？",
            "空调冰箱这种大家电保修几年？",
            "能用微信一键登录吗 不想再记一个密码",
            "前天秒杀抢的电饭煲今天又便宜了二十，这种能申请价保吗",
            "寄到香港的包裹要交关税吗？税费谁出",
            "T恤换个尺码，你们把新的寄给我这趟要我出运费吗",
            "缺货的商品能预约到货提醒吗",
            "客服有QQ号吗",
        ],
        "en": [
            "is your phone line open during Chinese New Year? need to call about an order",
            "do platinum members get a faster line when they need help from support?",
            "Payment page crashed, my bank shows the charge but the order is still unpaid. "
            "Should I just pay a second time?",
            "Can I pay half with Alipay and half with WeChat Pay on the same order?",
            "how long is the warranty on big appliances like air conditioners",
            "Can I buy an extended warranty for my laptop?",
            "can i sign in with my Apple ID instead of a password",
            "There's a typo in the company name on my e-invoice. Can you reissue it?",
            "trying to reset my pw and it keeps getting rejected... does it need numbers in it or what",
            "what details of mine does the delivery company get to see",
            "My blender broke after 4 months. If I send it in for repair, do I pay the shipping?",
            "Ordered 3 candles, the box only had 2 in it. What do I do?",
            "is your shop cheaper than Taobao?",
            "Can I donate my points to charity?",
        ],
    },
}
GENERATIVE_KINDS = {"kb"}
# the turns between the greeting and the goodbye, drawn with these weights; a
# generative turn never follows another one (the fallback policy hands over to a
# human after two generative answers in a row)
MIDDLE_WEIGHTS = {"order": 3, "kb": 4, "bot": 1, "recommend": 1, "thanks": 1}
ERROR_KINDS = ("http", "timeout", "connection", "empty", "invalid")
PROBLEMS = ("lost", "duplicated", "unexpected", "out_of_order")
MEASURES = {
    "throughput_turns_per_s": "turns answered (status 200, at least one reply) per second of wall time",
    "latency_ms": "time from sending a message to the whole reply, of answered turns; percentiles "
    "overall and by the script's label (non-generative / generative); also by language and by the "
    "script's turn kind (latency_ms_by_language, latency_ms_by_kind)",
    "errors": "turns not answered: HTTP status other than 200 (by status), timeouts, connection "
    "errors, empty replies (status 200, no message), invalid replies (not a JSON list)",
    "tracker": "each conversation's tracker read back through the HTTP API: user messages sent "
    "against `user` events, replies received against `bot` events: lost (sent or received, not "
    "stored), duplicated (stored more often), unexpected (stored, never sent or received), "
    "out_of_order (stored, but not in the order sent or received)",
}


class LoadError(Exception):
    """The bot or its HTTP API cannot be used: the message says what to change."""


@dataclass
class Turn:
    """One message of a conversation script."""

    kind: str
    language: str
    text: str
    generative: bool


@dataclass
class TurnResult:
    """What happened to one turn."""

    sender: str
    index: int
    url: str
    kind: str
    language: str
    generative: bool
    text: str
    ms: float = 0.0
    status: Optional[int] = None
    error: Optional[str] = None
    replies: List[Optional[str]] = field(default_factory=list)


def make_turn(rng: random.Random, kind: str, language: str) -> Turn:
    """A turn of ``kind`` in ``language``, its template (and order number) chosen by ``rng``."""
    text = rng.choice(TEMPLATES[kind][language]).replace("{order}", rng.choice(ORDERS))
    return Turn(kind, language, text, kind in GENERATIVE_KINDS)


def conversation_script(rng: random.Random, language: str, turns: int) -> List[Turn]:
    """A greeting, middle turns drawn by ``MIDDLE_WEIGHTS``, a goodbye (from 2 turns on)."""
    script: List[Turn] = []
    for index in range(turns):
        if index == 0:
            kind = "greet"
        elif index == turns - 1:
            kind = "goodbye"
        else:
            after_generative = script[-1].generative
            kinds = [k for k in MIDDLE_WEIGHTS if not (after_generative and k in GENERATIVE_KINDS)]
            kind = rng.choices(kinds, weights=[MIDDLE_WEIGHTS[k] for k in kinds])[0]
        script.append(make_turn(rng, kind, language))
    return script


def build_scripts(conversations: int, turns: int, seed: int,
                  languages: Sequence[str] = ("zh", "en")) -> List[List[Turn]]:
    """Every conversation's script; the same arguments give the same scripts.
    Conversation ``i`` is in ``languages[i % len(languages)]``."""
    rng = random.Random(seed)
    return [conversation_script(rng, languages[i % len(languages)], turns) for i in range(conversations)]


def turn_url(urls: Sequence[str], conversation: int, turn: int, spread_turns: bool) -> str:
    """The instance a turn goes to: conversations round-robin, and with ``spread_turns``
    each conversation's successive turns too."""
    return urls[(conversation + (turn if spread_turns else 0)) % len(urls)]


def in_order(expected: Sequence[Any], stored: Sequence[Any]) -> int:
    """How many of ``expected`` appear in ``stored`` in the same relative order
    (the length of the longest common subsequence)."""
    previous = [0] * (len(stored) + 1)
    for item in expected:
        current = [0]
        for j, other in enumerate(stored):
            current.append(previous[j] + 1 if item == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def compare(expected: Sequence[Any], stored: Sequence[Any]) -> Dict[str, int]:
    """``expected`` (sent or received, in order) against ``stored`` (the tracker's events).
    A text that appears several times is expected that many times."""
    want, have = Counter(expected), Counter(stored)
    lost = sum((want - have).values())
    extra = have - want
    return {
        "expected": len(expected),
        "stored": len(stored),
        "lost": lost,
        "duplicated": sum(n for text, n in extra.items() if text in want),
        "unexpected": sum(n for text, n in extra.items() if text not in want),
        "out_of_order": len(expected) - lost - in_order(expected, stored),
    }


def tracker_texts(events: Sequence[Dict[str, Any]], kind: str) -> List[Optional[str]]:
    """The texts of the tracker's events of ``kind`` ("user" or "bot"), in order."""
    return [_strip(e.get("text")) for e in events if e.get("event") == kind]


def check_conversation(results: Sequence[TurnResult], events: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, int]]:
    """One conversation's turns against its tracker's events."""
    sent = [_strip(r.text) for r in results]
    received = [reply for r in results for reply in r.replies]
    return {"user": compare(sent, tracker_texts(events, "user")),
            "bot": compare(received, tracker_texts(events, "bot"))}


def _strip(text: Optional[str]) -> Optional[str]:
    return text.strip() if isinstance(text, str) else text


def latency_summary(values: Sequence[float]) -> Dict[str, Any]:
    """Count, p50 / p95 / p99, mean and max (ms) of ``values``; ``None`` percentiles when empty."""
    if not values:
        return {"turns": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    return {"turns": len(values), "p50": report.percentile(values, 50), "p95": report.percentile(values, 95),
            "p99": report.percentile(values, 99), "mean": round(sum(values) / len(values), 1),
            "max": round(max(values), 1)}


def summarize(results: Sequence[TurnResult], elapsed: float) -> Dict[str, Any]:
    """Turn counts, throughput, latency and errors of a run."""
    answered = [r for r in results if r.error is None]
    errors: Dict[str, Any] = {kind: sum(r.error == kind for r in results) for kind in ERROR_KINDS}
    errors["total"] = sum(errors.values())
    errors["http_status"] = dict(sorted(Counter(str(r.status) for r in results if r.error == "http").items()))

    def latency(select: Callable[[TurnResult], bool]) -> Dict[str, Any]:
        return latency_summary([r.ms for r in answered if select(r)])

    return {
        "turns": {"sent": len(results), "answered": len(answered),
                  "generative": sum(r.generative for r in results),
                  "non_generative": sum(not r.generative for r in results)},
        "elapsed_s": round(elapsed, 2),
        "throughput_turns_per_s": round(len(answered) / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": {"all": latency(lambda r: True),
                       "non_generative": latency(lambda r: not r.generative),
                       "generative": latency(lambda r: r.generative)},
        "latency_ms_by_language": {lang: latency(lambda r, lang=lang: r.language == lang)
                                   for lang in sorted({r.language for r in results})},
        "latency_ms_by_kind": {kind: latency(lambda r, kind=kind: r.kind == kind)
                               for kind in sorted({r.kind for r in results})},
        "errors": errors,
    }


def total_check(per_conversation: Dict[str, Dict[str, Dict[str, int]]]) -> Dict[str, Any]:
    """The tracker check summed over conversations, and the conversations with a problem."""
    totals: Dict[str, Any] = {"conversations": len(per_conversation)}
    for side in ("user", "bot"):
        totals[side] = {key: sum(c[side][key] for c in per_conversation.values())
                        for key in ("expected", "stored", *PROBLEMS)}
    totals["problems"] = {sender: check for sender, check in per_conversation.items()
                          if any(check[side][key] for side in ("user", "bot") for key in PROBLEMS)}
    return totals


def checks(data: Dict[str, Any], targets: Dict[str, Optional[float]]) -> List[Dict[str, Any]]:
    """Pass/fail of a run against the targets (a ``None`` target is not checked)."""
    latency, tracker = data["latency_ms"], data["tracker"]
    rows = [
        ("non-generative turns p95 ms", "<=", targets["p95_ms"], latency["non_generative"]["p95"]),
        ("generative turns p95 ms", "<=", targets["p95_ms_generative"], latency["generative"]["p95"]),
        ("throughput turns/s", ">=", targets["min_throughput"], data["throughput_turns_per_s"]),
        ("errors", "<=", targets["max_errors"], data["errors"]["total"]),
    ]
    rows += [(f"tracker: {side} messages {what}", "<=", 0, tracker[side][what])
             for side in ("user", "bot") for what in PROBLEMS]
    result = []
    for name, op, target, measured in rows:
        if target is None:
            continue
        ok = measured is not None and (measured <= target if op == "<=" else measured >= target)
        result.append({"check": name, "target": f"{op} {target}", "measured": measured, "passed": ok})
    return result


# --- HTTP ---------------------------------------------------------------------
def _api_params(token: Optional[str]) -> Dict[str, str]:
    return {"token": token} if token else {}


async def check_api(session: "aiohttp.ClientSession", tracker_url: str, urls: Sequence[str],
                    token: Optional[str]) -> None:
    """Raise LoadError unless every bot answers and the tracker instance's HTTP API can be used."""
    import aiohttp

    for url in dict.fromkeys([*urls, tracker_url]):
        try:
            async with session.get(url + "/") as reply:
                await reply.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise LoadError(f"cannot reach the bot at {url}: {str(error) or type(error).__name__}") from error
    async with session.get(tracker_url + "/status", params=_api_params(token)) as reply:
        await reply.read()
        _raise_for_api(reply.status, tracker_url)


def _raise_for_api(status: int, url: str) -> None:
    if status == 404:
        raise LoadError(f"the HTTP API of the bot at {url} is not enabled (404): start the bot with "
                        "`rasa run --enable-api` (optionally --auth-token), or point --tracker-url at an "
                        "instance that has it.")
    if status in (401, 403):
        raise LoadError(f"the HTTP API of the bot at {url} refused the request ({status}): "
                        "pass the server's --auth-token value with --auth-token.")
    if status != 200:
        raise LoadError(f"the HTTP API of the bot at {url} answered {status}.")


async def send_turn(session: "aiohttp.ClientSession", url: str, sender: str, result: TurnResult,
                    timeout: float) -> None:
    """POST one message to the REST channel; fill in ``result`` (time, status, replies, error)."""
    import aiohttp

    started = time.perf_counter()
    try:
        async with session.post(url + "/webhooks/rest/webhook", json={"sender": sender, "message": result.text},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as reply:
            result.status = reply.status
            body = await reply.json(content_type=None) if reply.status == 200 else await reply.read()
    except asyncio.TimeoutError:
        result.error = "timeout"
    except aiohttp.ClientError:
        result.error = "connection"
    except ValueError:  # not JSON
        result.error = "invalid"
    else:
        if reply.status != 200:
            result.error = "http"
        elif not isinstance(body, list):
            result.error = "invalid"
        else:
            result.replies = [_strip(m.get("text")) for m in body if isinstance(m, dict)]
            result.error = None if result.replies else "empty"
    result.ms = 1000 * (time.perf_counter() - started)


async def run_conversation(session: "aiohttp.ClientSession", number: int, sender: str, script: Sequence[Turn],
                           urls: Sequence[str], spread_turns: bool, timeout: float,
                           progress: "tqdm", think: Tuple[float, float] = (0.0, 0.0),
                           seed: int = 0) -> List[TurnResult]:
    """Send the script's turns one after the other, each after the previous reply (or its error)
    and a pause drawn from ``think`` (seconds, min and max: the customer reading and typing)."""
    results = []
    pause = random.Random(f"{seed}-{number}")
    for index, turn in enumerate(script):
        if think[1] > 0:
            await asyncio.sleep(pause.uniform(*think))
        url = turn_url(urls, number, index, spread_turns)
        result = TurnResult(sender, index, url, turn.kind, turn.language, turn.generative, turn.text)
        await send_turn(session, url, sender, result, timeout)
        results.append(result)
        progress.update(1)
    return results


async def fetch_events(session: "aiohttp.ClientSession", tracker_url: str, sender: str,
                       token: Optional[str]) -> List[Dict[str, Any]]:
    """All events of a conversation's tracker, through the HTTP API."""
    import aiohttp

    params = dict(_api_params(token), include_events="ALL")
    try:
        async with session.get(f"{tracker_url}/conversations/{sender}/tracker", params=params) as reply:
            if reply.status != 200:
                _raise_for_api(reply.status, tracker_url)
            return (await reply.json()).get("events") or []
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        raise LoadError(f"cannot read the tracker of {sender} from {tracker_url}: "
                        f"{str(error) or type(error).__name__}") from error


async def run_load(scripts: Sequence[Sequence[Turn]], senders: Sequence[str], urls: Sequence[str],
                   tracker_url: str, token: Optional[str], spread_turns: bool,
                   timeout: float, think: Tuple[float, float] = (0.0, 0.0), seed: int = 0) -> Dict[str, Any]:
    """All conversations at once, then every tracker: the turns, the wall time and the check."""
    import aiohttp
    from tqdm import tqdm

    connector = aiohttp.TCPConnector(limit=max(len(scripts), 1) + 4)
    api_timeout = aiohttp.ClientTimeout(total=max(timeout, 60))
    async with aiohttp.ClientSession(connector=connector, timeout=api_timeout) as session:
        await check_api(session, tracker_url, urls, token)
        with tqdm(total=sum(len(s) for s in scripts), desc="turns", unit="turn") as progress:
            started = time.perf_counter()
            conversations = await asyncio.gather(*(
                run_conversation(session, i, senders[i], script, urls, spread_turns, timeout, progress, think, seed)
                for i, script in enumerate(scripts)))
            elapsed = time.perf_counter() - started
        limit = asyncio.Semaphore(8)

        async def check(results: List[TurnResult]) -> Dict[str, Dict[str, int]]:
            async with limit:
                return check_conversation(results, await fetch_events(session, tracker_url, results[0].sender, token))

        checked = await asyncio.gather(*(check(results) for results in conversations))
    return {"results": [r for results in conversations for r in results], "elapsed": elapsed,
            "tracker": dict(zip(senders, checked))}


# --- the command ----------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """The whole benchmark: 0 when every check passed, 1 when one failed, 2 when it could not run."""
    urls = [u.rstrip("/") for u in (args.url or ["http://127.0.0.1:5005"])]
    tracker_url = (args.tracker_url or urls[0]).rstrip("/")
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    if not languages or any(lang not in ("zh", "en") for lang in languages):
        print(f"error: --languages takes zh, en or zh,en (got '{args.languages}').", file=sys.stderr)
        return 2
    if args.conversations < 1 or args.turns < 1:
        print("error: --conversations and --turns must be at least 1.", file=sys.stderr)
        return 2
    try:
        think = tuple(float(x) for x in args.think_time.split(",")) if "," in args.think_time else (0.0, float(args.think_time))
        assert len(think) == 2 and 0 <= think[0] <= think[1]
    except (ValueError, AssertionError):
        print(f"error: --think-time takes MAX or MIN,MAX seconds (got '{args.think_time}').", file=sys.stderr)
        return 2
    run_id = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
    senders = [f"{args.sender_prefix}-{run_id}-{i:04d}" for i in range(args.conversations)]
    scripts = build_scripts(args.conversations, args.turns, args.seed, languages)
    try:
        outcome = asyncio.run(run_load(scripts, senders, urls, tracker_url, args.auth_token, args.spread_turns,
                                       args.timeout, think, args.seed))
    except LoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    parameters = {"urls": urls, "tracker_url": tracker_url, "conversations": args.conversations,
                  "turns_per_conversation": args.turns, "seed": args.seed, "languages": languages,
                  "spread_turns": args.spread_turns, "timeout_s": args.timeout, "think_time_s": list(think),
                  "run_id": run_id,
                  "senders": f"{args.sender_prefix}-{run_id}-NNNN"}
    targets = {"p95_ms": args.target_p95_ms, "p95_ms_generative": args.target_p95_generative_ms,
               "min_throughput": args.target_throughput, "max_errors": args.max_errors}
    data: Dict[str, Any] = {
        "benchmark": "load",
        "command": "rasa-gpt " + " ".join(getattr(args, "argv", [])),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": report.machine(),
        "parameters": parameters,
        **summarize(outcome["results"], outcome["elapsed"]),
        "tracker": total_check(outcome["tracker"]),
        "targets": targets,
    }
    data["checks"] = checks(data, targets)
    data["passed"] = all(c["passed"] for c in data["checks"])
    data["measures"] = MEASURES
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json", data)
    report.write_json(out / "turns.json", [asdict(r) for r in outcome["results"]])
    write_markdown(out / "report.md", data)
    print((out / "report.md").read_text(encoding="utf-8"))
    return 0 if data["passed"] else 1


def write_markdown(path: Path, data: Dict[str, Any]) -> None:
    """report.md: parameters, latency, errors, the tracker check and the pass/fail line."""
    m, p = data["machine"], data["parameters"]
    latency_rows = [[title + name.replace("_", " ")] + ["-" if row[k] is None else row[k]
                                                         for k in ("turns", "p50", "p95", "p99", "mean", "max")]
                    for title, group in (("", "latency_ms"), ("language ", "latency_ms_by_language"),
                                         ("kind ", "latency_ms_by_kind"))
                    for name, row in data[group].items()]
    errors = data["errors"]
    tracker_rows = [[side] + [data["tracker"][side][k] for k in
                              ("expected", "stored", "lost", "duplicated", "unexpected", "out_of_order")]
                    for side in ("user", "bot")]
    check_rows = [[c["check"], c["target"], c["measured"], "pass" if c["passed"] else "**FAIL**"]
                  for c in data["checks"]]
    lines = [
        "# Load benchmark", "",
        f"Command: `{data['command']}`  ", f"Date: {data['date']}  ",
        f"Machine (load generator): {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, no GPU  ",
        f"Bots: {', '.join(p['urls'])}{' (turns alternate)' if p['spread_turns'] else ''}; "
        f"trackers read from {p['tracker_url']}  ",
        f"{p['conversations']} conversations x {p['turns_per_conversation']} turns, languages "
        f"{','.join(p['languages'])}, seed {p['seed']}, timeout {p['timeout_s']} s, "
        f"think time {p.get('think_time_s', [0, 0])[0]}-{p.get('think_time_s', [0, 0])[1]} s; senders {p['senders']}", "",
        f"**Result: {'PASS' if data['passed'] else 'FAIL'}**", "",
        f"Turns: {data['turns']['sent']} sent ({data['turns']['generative']} generative), "
        f"{data['turns']['answered']} answered in {data['elapsed_s']} s: "
        f"**{data['throughput_turns_per_s']} turns/s**", "",
        "## Latency (ms, answered turns)", "",
        report.markdown_table(["turns", "count", "p50", "p95", "p99", "mean", "max"], latency_rows), "",
        "## Errors", "",
        report.markdown_table(["total", *ERROR_KINDS, "HTTP statuses"],
                              [[errors["total"], *(errors[k] for k in ERROR_KINDS), errors["http_status"] or "-"]]), "",
        f"## Tracker check ({data['tracker']['conversations']} conversations)", "",
        report.markdown_table(["messages", "expected", "stored", "lost", "duplicated", "unexpected", "out of order"],
                              tracker_rows), "",
    ]
    if data["tracker"]["problems"]:
        lines += ["Conversations with a problem: " + ", ".join(sorted(data["tracker"]["problems"])), ""]
    lines += ["## Checks", "", report.markdown_table(["check", "target", "measured", "result"], check_rows), "",
              "## Measures", ""] + [f"- `{k}`: {v}" for k, v in data["measures"].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rasa-gpt bench load``."""
    parser.add_argument("--url", action="append",
                        help="the bot's base URL (default http://127.0.0.1:5005); repeat for several instances")
    parser.add_argument("--tracker-url",
                        help="the instance whose HTTP API the trackers are read from (default: the first --url)")
    parser.add_argument("--auth-token", help="the server's --auth-token, sent as ?token=... to the HTTP API")
    parser.add_argument("--conversations", type=int, default=10, help="conversations at the same time")
    parser.add_argument("--turns", type=int, default=6, help="turns per conversation")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--seed", type=int, default=0, help="the scripts' random seed")
    parser.add_argument("--languages", default="zh,en", help="conversation languages, taken in turn (zh,en / zh / en)")
    parser.add_argument("--spread-turns", action="store_true",
                        help="with several --url: each conversation's successive turns alternate between them")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a turn may take")
    parser.add_argument("--think-time", default="0",
                        help="pause before each turn, MAX or MIN,MAX seconds (default 0: the next message as soon "
                             "as the reply arrives)")
    parser.add_argument("--sender-prefix", default="load", help="sender ids are PREFIX-RUNID-NNNN")
    parser.add_argument("--target-p95-ms", type=float, default=1500.0, help="p95 of non-generative turns at most")
    parser.add_argument("--target-p95-generative-ms", type=float,
                        help="p95 of generative turns at most (not checked by default)")
    parser.add_argument("--target-throughput", type=float, help="turns/s at least (not checked by default)")
    parser.add_argument("--max-errors", type=int, default=0, help="errored turns allowed")
