"""The summary a human agent gets at a hand-off, built from the conversation's
events and slots only: every fact in it is something the customer said or the
bot did, copied, never worded by a model (so nothing can be invented). Phone
numbers and e-mail addresses in the messages it quotes are masked.

``build_summary`` gives a dictionary (stored in the tracker with the hand-off
message and sent to the desk); ``render`` words it for people, in the agents'
language, with the customer's own words quoted as they were written."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa_gpt_components.handoff.conversation import Conversation, Turn
from rasa_gpt_components.text import LANGUAGE_SLOT, detect_language, mask_personal_data

MAX_QUOTE = 200  # characters of a customer's or the bot's message in a summary


@dataclass(frozen=True)
class SummarySettings:
    """What goes into the summary (the ``handoff:`` options of GenerativeNLG)."""

    agent_language: str = "zh"  # the language the summary is worded in: zh or en
    transcript_messages: int = 6  # the last messages, customer's and bot's, quoted
    small_talk_intents: Tuple[str, ...] = ("greet", "goodbye", "thank", "affirm", "deny", "bot_challenge")
    handoff_intents: Tuple[str, ...] = ("human_handoff",)
    ignore_entities: Tuple[str, ...] = ("language",)
    report_slots: Tuple[str, ...] = ()  # slots whose values the agent sees (e.g. a form's)
    action_labels: Dict[str, str] = field(default_factory=dict)  # action or form -> words for the agent
    offer_action: str = "utter_offer_human"  # GenerativeFallbackPolicy's frustration.offer_action
    offer_actions: Tuple[str, ...] = ()  # and its offer_actions: other replies that offer a person
    frustration_slot: str = "frustration"  # and its frustration.slot
    fallback_response: str = "utter_generative_fallback"

    def __post_init__(self) -> None:
        if self.agent_language not in LABELS:
            raise ValueError(f"agent_language must be one of {', '.join(LABELS)}, got '{self.agent_language}'.")
        if int(self.transcript_messages) < 0:
            raise ValueError("transcript_messages must not be negative.")


def _quote(text: str) -> str:
    """A message as the summary quotes it: phone numbers and e-mail addresses masked (the
    summary goes to chat groups), at most ``MAX_QUOTE`` characters."""
    text = mask_personal_data(text)
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…"


def _distinct(values: Sequence[str]) -> List[str]:
    return list(dict.fromkeys(v for v in values if v))


def _sentiment(turn: Turn) -> Optional[str]:
    return turn.sentiment.get("label") if turn.sentiment else None


def build_summary(conversation: Conversation, settings: SummarySettings, conversation_id: str = "",
                  frustration: Optional[float] = None) -> Dict[str, Any]:
    """What the agent must know, from ``conversation`` (its latest session)."""
    s = settings
    turns = conversation.turns
    last = turns[-1] if turns else None
    requests = [{"intent": t.intent, "text": _quote(t.text)} for t in turns
                if t.intent not in s.small_talk_intents and t.intent not in s.handoff_intents and t.text]
    mentioned: Dict[str, List[str]] = {}
    for turn in turns:
        for entity in turn.entities:
            kind = str(entity.get("entity") or "")
            if kind and kind not in s.ignore_entities and entity.get("value") not in (None, ""):
                mentioned.setdefault(kind, [])
                mentioned[kind] = _distinct([*mentioned[kind], str(entity["value"])])
    bookkeeping = {s.fallback_response, s.offer_action, "action_deactivate_loop", *conversation.forms_started}
    # the latest turn's actions are the hand-off itself
    done = _distinct([a for t in turns[:-1] for a in t.actions if not a.startswith("utter_") and a not in bookkeeping])
    stopped = [f for f in _distinct(conversation.forms_started)
               if f not in conversation.forms_completed and f != conversation.active_form]
    unanswered = [_quote(t.text) for t in turns if t.unanswered(s.fallback_response)]
    language = conversation.slots.get(LANGUAGE_SLOT)
    if language not in ("zh", "en"):
        language = detect_language(" ".join(t.text for t in turns)) if turns else None
    said: List[Dict[str, str]] = []
    for turn in turns:
        said.append({"from": "customer", "text": _quote(turn.text)})
        said.extend({"from": "bot", "text": _quote(text)} for text in turn.bot_texts)
    trend = [label for label in (_sentiment(t) for t in turns) if label]
    return {
        "conversation_id": conversation_id,
        "language": language,
        "reason": _reason(turns, s),
        "last_message": _quote(last.text) if last else "",
        "requests": requests[-5:],
        "mentioned": mentioned,
        "done": [{"action": a, "label": s.action_labels.get(a, a)} for a in done]
        + [{"action": f, "label": s.action_labels.get(f, f)} for f in _distinct(conversation.forms_completed)],
        "open": {
            "form": conversation.active_form,
            "requested_slot": conversation.slots.get("requested_slot") if conversation.active_form else None,
            "stopped_forms": stopped,
            "unanswered": unanswered[-3:],
        },
        "slots": {name: conversation.slots[name] for name in s.report_slots
                  if conversation.slots.get(name) not in (None, "")},
        "sentiment": {"trend": trend, "frustration": None if frustration is None else round(frustration, 2)},
        "transcript": said[-s.transcript_messages:] if s.transcript_messages else [],
    }


def _reason(turns: Sequence[Turn], s: SummarySettings) -> str:
    """Why the conversation is handed off: the customer asked, accepted the bot's
    offer, or the bot gave up (fallbacks)."""
    if not turns:
        return "bot"
    if turns[-1].intent in s.handoff_intents:
        return "asked"
    if len(turns) > 1 and turns[-2].offered_a_person((s.offer_action, *s.offer_actions)):
        return "offer_accepted"  # the frustration offer, a reply that offers one, an "I don't know"
    return "bot"


LABELS = {
    "zh": {
        "title": "转人工", "conversation": "会话", "language": "客户语言", "reason": "原因",
        "last_message": "客户最后说", "requests": "客户诉求", "mentioned": "提到的信息", "done": "机器人已完成",
        "open": "未完成", "form": "进行中的表单", "missing": "待填写", "stopped": "中途停止的表单",
        "unanswered": "未能回答的问题", "slots": "已收集的信息", "sentiment": "情绪", "frustration": "烦躁度",
        "transcript": "最近对话", "customer": "客户", "bot": "机器人", "none": "无",
        "asked": "客户要求转人工", "offer_accepted": "客户接受了转人工的提议", "bot_reason": "机器人无法解决",
        "zh": "中文", "en": "英文", "order_number": "订单号", "product": "商品", "preference": "偏好",
        "negative": "负面", "neutral": "中性", "positive": "正面",
    },
    "en": {
        "title": "Hand-off", "conversation": "conversation", "language": "Customer's language", "reason": "Why",
        "last_message": "Customer's last message", "requests": "What the customer asked",
        "mentioned": "Mentioned", "done": "The bot already did", "open": "Still open", "form": "form in progress",
        "missing": "waiting for", "stopped": "forms stopped", "unanswered": "questions not answered",
        "slots": "Collected", "sentiment": "Sentiment", "frustration": "frustration", "transcript": "Last messages",
        "customer": "Customer", "bot": "Bot", "none": "none", "asked": "the customer asked for a human",
        "offer_accepted": "the customer accepted the bot's offer of a human",
        "bot_reason": "the bot could not help", "zh": "Chinese", "en": "English", "order_number": "order numbers",
        "product": "products", "preference": "preferences", "negative": "negative", "neutral": "neutral",
        "positive": "positive",
    },
}


def render(summary: Dict[str, Any], language: str, quote=lambda text: f"“{text}”") -> str:
    """``summary`` worded for the agents in ``language`` (zh/en), one fact a line;
    ``quote`` wraps the customer's and the bot's words (escaping them for a format)."""
    w = LABELS[language]
    sep = "：" if language == "zh" else ": "
    comma = "，" if language == "zh" else ", "
    lines = [f"{w['title']} · {w['conversation']} {summary['conversation_id']}"]
    if summary.get("language"):
        lines.append(f"{w['language']}{sep}{w.get(summary['language'], summary['language'])}")
    reason = summary.get("reason")
    lines.append(f"{w['reason']}{sep}{w['bot_reason'] if reason == 'bot' else w.get(reason, reason)}")
    if summary.get("last_message"):
        lines.append(f"{w['last_message']}{sep}{quote(summary['last_message'])}")
    if summary.get("requests"):
        lines.append(f"{w['requests']}{sep}" + comma.join(quote(r["text"]) for r in summary["requests"]))
    for kind, values in (summary.get("mentioned") or {}).items():
        lines.append(f"{w['mentioned']} · {w.get(kind, kind)}{sep}{comma.join(quote(v) for v in values)}")
    done = summary.get("done") or []
    lines.append(f"{w['done']}{sep}" + (comma.join(d["label"] for d in done) if done else w["none"]))
    still = summary.get("open") or {}
    open_parts = []
    if still.get("form"):
        missing = f" ({w['missing']} {still['requested_slot']})" if still.get("requested_slot") else ""
        open_parts.append(f"{w['form']} {still['form']}{missing}")
    if still.get("stopped_forms"):
        open_parts.append(f"{w['stopped']} {comma.join(still['stopped_forms'])}")
    if still.get("unanswered"):
        open_parts.append(f"{w['unanswered']} " + comma.join(quote(t) for t in still["unanswered"]))
    lines.append(f"{w['open']}{sep}" + (("；" if language == "zh" else "; ").join(open_parts) if open_parts else w["none"]))
    for name, value in (summary.get("slots") or {}).items():
        lines.append(f"{w['slots']} · {name}{sep}{quote(str(value))}")
    mood = summary.get("sentiment") or {}
    if mood.get("trend") or mood.get("frustration") is not None:
        trend = " → ".join(w.get(label, label) for label in mood.get("trend") or [])
        level = f"{w['frustration']} {mood['frustration']:.2f}" if mood.get("frustration") is not None else ""
        level = (f"（{level}）" if language == "zh" else f" ({level})") if level else ""
        lines.append(f"{w['sentiment']}{sep}{trend or w['none']}{level}")
    if summary.get("transcript"):
        lines.append(f"{w['transcript']}{sep}")
        lines.extend(f"  {w[m['from']]}{sep}{quote(m['text'])}" for m in summary["transcript"])
    return "\n".join(lines)
