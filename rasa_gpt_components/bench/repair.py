"""``rasa-gpt bench repair``: a conversation test set (Rasa end-to-end test
stories with the customer's text, each named "... (zh|en) [tag]") through a
trained bot.

    rasa-gpt bench repair --model MODEL --stories FILE [--bot DIR] --out DIR
        [--url http://127.0.0.1:5005 --database-url URL]

1. ``rasa test core --e2e`` on the stories (Rasa's own test: NLU on the
   customer's text, every predicted action compared). The report lists every
   conversation that went wrong, the first step where it did (the intent the
   NLU gave or the action the policies chose, and what the story expected),
   and the share fully right by tag and language.
2. With ``--url`` and ``--database-url``: the live bot. Each conversation's
   messages are sent, in order, to the running bot's REST channel (started
   with ``--enable-api``; its action server writing to ``--database-url``),
   each after the previous reply. Two checks:
   - *actions*: the conversation's tracker is read back
     (``GET /conversations/<id>/tracker``) and the actions the bot ran after
     each message are compared with the story's. Here the bot's own NLU
     decides every turn (no annotated intent at confidence 1.0, as in
     ``rasa test``), forms extract their slots, custom actions run and the
     repair policy may ask a clarifying question: what the customer gets. A
     conversation is right when every turn's actions are the story's;
   - *database*: the rows the shop's tables gained during the conversation.
     A violation is a row written by a conversation whose story submits
     nothing, a row whose free text (refund reason, new address, exchange
     wish) is a message the story does not treat as that answer (a question,
     a cancellation), or a row filed for an order or an item the story's slots
     never held when it submits (a correction taken for a yes: the item the
     customer was correcting filed). ``rasa test`` itself runs no custom action.
   And, beside the actions, *what the customer got* for each message the story
   answers with ``utter_knowledge_answer`` (the knowledge base covers it) or
   ``utter_generative_fallback`` (it does not): an answer from the knowledge
   base, "I don't know" (either response can decline), or something else.
   The actions compare the response's name; this compares the reply's kind, so
   an off-topic question the NLU read as ``faq`` and the knowledge answer
   declined is told apart from one that got an unrelated passage, and a
   knowledge question that was declined is not counted as answered.

Exit code 0 when the conversations ran (whatever the score), 2 when the bot or
the database cannot be used.
"""

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from rasa_gpt_components.bench import report
from rasa_gpt_components.handoff.conversation import read_conversation
from rasa_gpt_components.yaml_files import read_yaml_file

NAME = re.compile(r"\((zh|en)\)\s*\[([\w-]+)\]")
# the shop tables the check reads, and each one's free-text column
WRITES = {"refunds": "reason", "address_changes": "new_address", "exchanges": "wanted"}
SUBMITS = ("action_submit_refund", "action_change_address", "action_submit_exchange")
# what a row is filed for: each table's columns and the slots that hold them when a story submits
FILED_FOR = {"refunds": {"order_no": "order_number"}, "address_changes": {"order_no": "order_number"},
             "exchanges": {"order_no": "order_number", "sku": "exchange_item"}}
FILED_SLOTS = sorted({slot for columns in FILED_FOR.values() for slot in columns.values()})
# a message with one of these intents is never the answer a free-text slot stores
NOT_ANSWERS = ("faq", "out_of_scope", "nlu_fallback", "stop", "deny", "greet", "goodbye", "thank")
# actions that are not the bot's answer to a message (Rasa runs them around every turn)
NOT_COMPARED = ("action_listen", "action_session_start")
# the responses a story expects for a question, and the kind of reply each stands for
KNOWLEDGE_RESPONSE, FALLBACK_RESPONSE = "utter_knowledge_answer", "utter_generative_fallback"
REPLY_KINDS = {KNOWLEDGE_RESPONSE: "answer", FALLBACK_RESPONSE: "decline"}


def load_stories(path: Path) -> List[Dict[str, Any]]:
    """The stories with their language, tag, user messages (text, intent) and submit actions."""
    from rasa.shared.nlu.training_data.entities_parser import replace_entities  # "[ES1](order_number)" -> "ES1"

    stories = []
    for story in (read_yaml_file(path) or {}).get("stories") or []:
        match = NAME.search(story["story"])
        steps = story.get("steps") or []
        stories.append({
            "name": story["story"],
            "language": match.group(1) if match else "?",
            "tag": match.group(2) if match else "untagged",
            "messages": [(replace_entities(s["user"]).strip(), s.get("intent")) for s in steps if "user" in s],
            "submits": sum(1 for s in steps if s.get("action") in SUBMITS),
            "filed_for": filed_for(steps),
            "actions": turn_actions(steps, user=lambda s: "user" in s, action=lambda s: s.get("action")),
        })
    return stories


def filed_for(steps: Sequence[Dict[str, Any]]) -> Dict[str, List[str]]:
    """For each slot of :data:`FILED_FOR`, the values it holds at the story's submit actions."""
    held: Dict[str, Any] = {}
    values: Dict[str, List[str]] = {}
    for step in steps:
        for slot_set in step.get("slot_was_set") or []:
            held.update(slot_set if isinstance(slot_set, dict) else {})
        if step.get("action") in SUBMITS:
            for slot in FILED_SLOTS:
                if held.get(slot) is not None:
                    values.setdefault(slot, []).append(str(held[slot]))
    return values


def row_violation(story: Dict[str, Any], table: str, row: Dict[str, Any]) -> Optional[str]:
    """Why a row the conversation wrote violates its story (see the module's docstring), or None."""
    if not story["submits"]:
        return "written, nothing submitted"
    not_answers = {_norm(m) for m, intent in story["messages"] if intent in NOT_ANSWERS}
    if _norm(row.get(WRITES[table])) in not_answers:
        return f"a {table} row stores a message that is not the answer"
    for column, slot in FILED_FOR.get(table, {}).items():
        if row.get(column) is not None and str(row[column]) not in story["filed_for"].get(slot, []):
            return f"a {table} row filed for {column} {row[column]}, which the story never submits"
    return None


def turn_actions(items: Sequence[Dict[str, Any]], user: Any, action: Any) -> List[List[str]]:
    """The actions after each user message (a story's steps or a tracker's events):
    ``user(item)`` tells a message, ``action(item)`` names an action (or None)."""
    turns: List[List[str]] = []
    for item in items:
        if user(item):
            turns.append([])
        elif turns and action(item) and action(item) not in NOT_COMPARED:
            turns[-1].append(action(item))
    return turns


def tracker_actions(events: Sequence[Dict[str, Any]]) -> List[List[str]]:
    """``turn_actions`` of a tracker's events (Rasa's JSON)."""
    return turn_actions(events, user=lambda e: e.get("event") == "user",
                        action=lambda e: e.get("name") if e.get("event") == "action" else None)


def first_difference(expected: Sequence[List[str]], live: Sequence[List[str]]) -> Optional[Dict[str, Any]]:
    """The first turn whose actions differ (1-based), or None when every turn matches."""
    for number in range(max(len(expected), len(live))):
        want = expected[number] if number < len(expected) else []
        got = live[number] if number < len(live) else []
        if want != got:
            return {"turn": number + 1, "kind": "action", "expected": ", ".join(want) or "(nothing)",
                    "predicted": ", ".join(got) or "(nothing)"}
    return None


def question_replies(story: Dict[str, Any], events: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """For each message ``story`` answers with a knowledge answer or the fallback: the
    kind of reply it expects (``answer``, ``decline``) and the kind the live bot gave
    (``answered`` from the knowledge base, ``declined``, or ``other``)."""
    turns = read_conversation(events).turns
    replies = []
    for number, (want, (text, _)) in enumerate(zip(story["actions"], story["messages"])):
        if not want or want[0] not in REPLY_KINDS:
            continue
        turn = turns[number] if number < len(turns) else None
        got = "other"
        if turn is not None and turn.unanswered(FALLBACK_RESPONSE):
            got = "declined"
        elif turn is not None and turn.answered:
            got = "answered"
        replies.append({"story": story["name"], "tag": story["tag"], "text": text,
                        "expected": REPLY_KINDS[want[0]], "got": got})
    return replies


def reply_kinds(replies: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """``question_replies`` counted: for all of them and the digressions, how many
    expected each kind and what they got; right = answer -> answered, decline -> declined."""
    right = {"answer": "answered", "decline": "declined"}

    def count(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        got = {kind: dict(Counter(r["got"] for r in rows if r["expected"] == kind)) for kind in right}
        hits = sum(r["got"] == right[r["expected"]] for r in rows)
        return {"right": hits, "total": len(rows), "share": round(hits / len(rows), 4) if rows else 0.0, "got": got}

    return {"all": count(replies), "digression": count([r for r in replies if r["tag"] == "digression"]),
            "wrong": [r for r in replies if r["got"] != right[r["expected"]]]}


def first_failures(failed_file: Path) -> Dict[str, Dict[str, Any]]:
    """story name -> the first wrong step of each failed story (rasa test's "# predicted:" comments)."""
    failures: Dict[str, Dict[str, Any]] = {}
    if not failed_file.exists():
        return failures
    name, turn = None, 0
    for line in failed_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("- story: "):
            name, turn = re.sub(r"\s*\([^()]*\.ya?ml\)\s*$", "", line[len("- story: "):]).strip(), 0
            continue
        stripped = line.strip()
        if stripped.startswith(("- intent:", "- user:")):
            turn += 1
        if name and "# predicted:" in stripped and name not in failures:
            expected, predicted = stripped.split("# predicted:", 1)
            kind = "intent" if expected.lstrip("- ").startswith(("intent", "user")) else "action"
            failures[name] = {"turn": turn, "kind": kind, "expected": expected.strip(" -"),
                              "predicted": predicted.strip()}
    return failures


def run_rasa_test(bot: Path, model: str, stories: Path, out: Path) -> Path:
    rasa = str(Path(sys.executable).with_name("rasa"))
    command = [rasa, "test", "core", "--e2e", "--model", model, "--stories", str(stories), "--out", str(out)]
    subprocess.run(command, cwd=bot, check=True)
    return out / "failed_test_stories.yml"


def score(stories: Sequence[Dict[str, Any]], failures: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    def share(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
        right = sum(1 for s in rows if s["name"] not in failures)
        return {"right": right, "total": len(rows), "share": round(right / max(len(rows), 1), 4)}

    by_tag = {tag: share([s for s in stories if s["tag"] == tag]) for tag in sorted({s["tag"] for s in stories})}
    by_language = {lang: share([s for s in stories if s["language"] == lang]) for lang in ("zh", "en")}
    repairs = [s for s in stories if s["tag"] != "plain"]
    kinds = Counter(f["kind"] for f in failures.values())
    failed = [{"story": s["name"], "tag": s["tag"], **failures[s["name"]]} for s in stories if s["name"] in failures]
    return {"all": share(list(stories)), "repair_conversations": share(repairs), "by_tag": by_tag,
            "by_language": by_language, "first_wrong_step": dict(kinds), "failed": failed}


async def replay(stories: Sequence[Dict[str, Any]], url: str, database_url: str, timeout: float) -> Dict[str, Any]:
    """Send every conversation to the running bot; the actions it ran against the stories',
    the rows each conversation wrote, and the violations."""
    import secrets

    import aiohttp
    from sqlalchemy import create_engine, inspect, text
    from tqdm import tqdm

    from rasa_gpt_components.bench.load import TurnResult, send_turn

    engine = create_engine(database_url)
    tables = {t: [c, *FILED_FOR.get(t, {})] for t, c in WRITES.items() if inspect(engine).has_table(t)}

    def rows() -> Dict[str, Dict[int, Dict[str, Any]]]:
        with engine.connect() as connection:
            return {t: {r[0]: dict(zip(columns, r[1:]))
                        for r in connection.execute(text(f"SELECT id, {', '.join(columns)} FROM {t}"))}  # noqa: S608
                    for t, columns in tables.items()}

    results, violations, differences, errors, replies = [], [], {}, 0, []
    async with aiohttp.ClientSession() as session:
        for story in tqdm(stories, desc="live bot", unit="conversation"):
            before, sender = rows(), f"repair-{secrets.token_hex(6)}"
            for number, (message, _) in enumerate(story["messages"]):
                turn = TurnResult(sender, number, url, story["tag"], story["language"], False, message)
                await send_turn(session, url, sender, turn, timeout)
                errors += turn.error is not None and turn.error != "empty"
            events = await _events(session, url, sender)
            difference = first_difference(story["actions"], tracker_actions(events))
            replies += question_replies(story, events)
            if difference:
                differences[story["name"]] = difference
            after = rows()
            written = [(t, row) for t in tables for i, row in after[t].items() if i not in before[t]]
            for table, row in written:
                why = row_violation(story, table, row)
                if why:
                    violations.append({"story": story["name"], "tag": story["tag"], "table": table, "why": why})
            results.append({"story": story["name"], "tag": story["tag"], "rows": len(written)})
    engine.dispose()
    by_tag = Counter(v["tag"] for v in violations)
    return {"conversations": len(results), "rows_written": sum(r["rows"] for r in results),
            "violations": violations, "violations_by_tag": dict(by_tag), "turn_errors": errors,
            "actions": score(stories, differences), "replies": reply_kinds(replies)}


async def _events(session: Any, url: str, sender: str) -> List[Dict[str, Any]]:
    """The conversation's tracker events; a clear error when the bot's HTTP API is off."""
    async with session.get(f"{url}/conversations/{sender}/tracker") as reply:
        if reply.status != 200:
            raise RuntimeError(f"GET /conversations/{sender}/tracker answered {reply.status}: "
                               "start the bot with `rasa run --enable-api`.")
        return (await reply.json(content_type=None)).get("events") or []


def _norm(value: Optional[str]) -> str:
    """A message as the bot stores it (the shop cleans text: full-width punctuation to ASCII), compared casefolded."""
    from rasa_gpt_components.text import clean_text

    return re.sub(r"\s+", " ", clean_text(value or "")).strip().casefold()


def run(args: argparse.Namespace) -> int:
    stories_path = Path(args.stories)
    if not stories_path.is_absolute() and not stories_path.exists():
        stories_path = Path(args.bot) / stories_path
    stories_path = stories_path.resolve()
    stories = load_stories(stories_path)
    out = Path(args.out)
    data: Dict[str, Any] = {"stories": str(args.stories), "conversations": len(stories)}
    with tempfile.TemporaryDirectory(prefix="rasa-gpt-repair-") as work:
        # rasa test reads a file as test stories only when its name starts with "test_"
        tested = Path(work) / "stories" / f"test_{stories_path.name}"
        tested.parent.mkdir()
        tested.write_text(stories_path.read_text(encoding="utf-8"), encoding="utf-8")
        failed_file = run_rasa_test(Path(args.bot), str(Path(args.model).resolve()), tested, Path(work) / "results")
        failures = first_failures(failed_file)
        out.mkdir(parents=True, exist_ok=True)
        if failed_file.exists():
            (out / "failed_test_stories.yml").write_text(failed_file.read_text(encoding="utf-8"), encoding="utf-8")
    data["rasa_test"] = score(stories, failures)
    if args.url and args.database_url:
        try:
            data["database_check"] = asyncio.run(replay(stories, args.url.rstrip("/"), args.database_url, args.timeout))
        except Exception as error:  # noqa: BLE001 - a bot or database that cannot be used: say which
            print(f"rasa-gpt bench repair: the live bot could not be checked: {error}", file=sys.stderr)
            return 2
    report.publish(out, args, data, write_markdown)
    return 0


def write_markdown(path: Path, data: Dict[str, Any]) -> None:
    test = data["rasa_test"]
    m = data["machine"]
    lines = [
        "# Conversation repair: the conversation test set", "",
        f"Command: `{data['command']}`  ", f"Date: {data['date']}  ",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB; Python {m['python']}  ",
        f"Stories: `{data['stories']}` ({data['conversations']} conversations)", "",
        "## rasa test core --e2e: conversations fully right", "",
        "Each message's annotated intent is taken at confidence 1.0 for the policies, and the NLU's "
        "intent must equal it: a story fails at the first intent or action that differs.", "",
        *_score_lines(test),
        "", f"First wrong step: {test['first_wrong_step'] or 'none'} (intent: the NLU; action: the policies).",
    ]
    check = data.get("database_check")
    if check:
        lines += ["", "## The live bot: actions", "",
                  "The bot's own NLU, forms, custom actions and repair policy decide every turn; a conversation "
                  "is right when the actions after each message are the story's (intents are not compared).", "",
                  *_score_lines(check["actions"]),
                  "", "## The live bot: database", "",
                  f"{check['conversations']} conversations replayed, {check['rows_written']} rows written, "
                  f"**{len(check['violations'])} violations** {check['violations_by_tag'] or ''}, "
                  f"{check['turn_errors']} turns without a reply."]
        if check["violations"]:
            lines.append(report.markdown_table(["conversation", "table", "why"],
                                               [[v["story"], v["table"], v["why"]] for v in check["violations"]]))
        lines += _reply_lines(check["replies"])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _score_lines(result: Dict[str, Any]) -> List[str]:
    """A ``score`` as a table by group, then its failed conversations with their first wrong step."""
    lines = [report.markdown_table(["group", "right", "total", "share"],
                                   [["all", *_cells(result["all"])], ["with a repair", *_cells(result["repair_conversations"])]]
                                   + [[f"[{t}]", *_cells(v)] for t, v in result["by_tag"].items()]
                                   + [[f"({lang})", *_cells(v)] for lang, v in result["by_language"].items()])]
    if result["failed"]:
        lines += ["", "Failed conversations (the first wrong step):", "",
                  report.markdown_table(["conversation", "turn", "expected", "predicted"],
                                        [[f["story"], f["turn"], f["expected"], f["predicted"]] for f in result["failed"]])]
    return lines


def _reply_lines(kinds: Dict[str, Any]) -> List[str]:
    """What the customer got for each question, by the reply's kind (not the response's name)."""
    def row(group: str, expected: str) -> List[Any]:
        got = kinds[group]["got"][expected]
        return [group, expected, sum(got.values()), got.get("answered", 0), got.get("declined", 0), got.get("other", 0)]

    lines = ["", "## The live bot: what the customer got for each question", "",
             f"Questions the story answers with `{KNOWLEDGE_RESPONSE}` (expected: an answer) or "
             f"`{FALLBACK_RESPONSE}` (expected: a decline), by the kind of the reply the bot sent, "
             "whichever response sent it. Right: an answer from the knowledge base where one is expected "
             "(whether it is the right passage is not checked here), \"I don't know\" where a decline is. "
             f"All questions: **{kinds['all']['right']}/{kinds['all']['total']}** right; digressions: "
             f"**{kinds['digression']['right']}/{kinds['digression']['total']}**.", "",
             report.markdown_table(["questions", "expected", "total", "answered", "declined", "other"],
                                   [row(g, e) for g in ("all", "digression") for e in ("answer", "decline")])]
    if kinds["wrong"]:
        lines += ["", report.markdown_table(["conversation", "question", "expected", "got"],
                                            [[r["story"], r["text"], r["expected"], r["got"]] for r in kinds["wrong"]])]
    return lines


def _cells(entry: Dict[str, Any]) -> List[Any]:
    return [entry["right"], entry["total"], f"{100 * entry['share']:.1f} %"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a trained bot model (.tar.gz)")
    parser.add_argument("--stories", default="benchmark/test_repair_conversations.yml",
                        help="end-to-end test stories, relative to --bot")
    parser.add_argument("--bot", default="bot", help="the bot's folder (rasa test runs there)")
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--url", help="a running bot (REST channel, --enable-api) for the live checks")
    parser.add_argument("--database-url", help="the database its action server writes to")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one reply")
