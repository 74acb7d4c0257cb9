"""Observability in one place: every Prometheus metric of rasa_gpt_components,
and the ``key=value`` format of its structured log lines.

The metrics live in prometheus_client's process-wide registry and are served by
``rasa_gpt_components.serving.MetricsInput`` at ``GET /metrics``. Labels take
only values from small fixed sets (reasons, response and channel names, the
backend): never a user id, a message or anything else a customer typed.
See docs/observability.md.
"""

import json
from typing import Any

from prometheus_client import Counter, Histogram

# seconds; around the NLG's default 4.5 s budget and WeChat's 5 s window
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 7.5, 10.0, 30.0)

FALLBACK_DECISIONS = Counter(
    "rasa_gpt_fallback_decisions",
    "Turns GenerativeFallbackPolicy took over (its action ran), by what it did "
    "(fallback, handoff, apology) and why.",
    ["decision", "reason"],
)
ANSWERS = Counter(
    "rasa_gpt_answers",
    "Replies of GenerativeNLG to generative and rephrased responses, by response, outcome "
    "(generated, rephrased, passage, declined, template) and reason.",
    ["action", "outcome", "reason"],
)
GENERATION_SECONDS = Histogram(
    "rasa_gpt_generation_seconds",
    "Time of each GenerativeNLG turn (waiting for a slot, retrieval, generation, guardrails), "
    "by backend and whether the reply is generated text.",
    ["backend", "generated"],
    buckets=LATENCY_BUCKETS,
)
GUARDRAIL_REFUSALS = Counter(
    "rasa_gpt_guardrail_refusals",
    "Messages or generated answers a guardrail refused, by guardrail.",
    ["guardrail"],
)
TIME_BUDGET_EXCEEDED = Counter(
    "rasa_gpt_time_budget_exceeded",
    "GenerativeNLG turns that took longer than time_budget.",
)
CHANNEL_REQUESTS = Counter(
    "rasa_gpt_channel_requests",
    "Webhook requests to the WeChat, WeCom and Slack channels, by outcome.",
    ["channel", "outcome"],
)
CHANNEL_REPLY_SECONDS = Histogram(
    "rasa_gpt_channel_reply_seconds",
    "Time of the bot's turn for a message from a channel, until all its replies were handed over.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
MESSAGE_API_FAILURES = Counter(
    "rasa_gpt_message_api_failures",
    "Messages the WeChat/WeCom message API or Slack's Web API failed to deliver.",
    ["channel"],
)
HANDOFFS = Counter(
    "rasa_gpt_handoffs",
    "Hand-offs to a human agent (the hand-off response was rendered), by why: the customer "
    "asked, accepted the bot's offer, or the bot could not help.",
    ["reason"],
)
REPAIRS = Counter(
    "rasa_gpt_repairs",
    "Conversation repairs of ConversationRepairPolicy, by kind (digression, cancellation, clarification).",
    ["repair"],
)
HANDOFF_DELIVERIES = Counter(
    "rasa_gpt_handoff_deliveries",
    "Hand-off summaries sent to the agents' desk, by webhook format and outcome (delivered, failed).",
    ["format", "outcome"],
)


def log_fields(**fields: Any) -> str:
    """``fields`` as ``key=value`` pairs for one log line (logfmt): floats with 2
    decimals, booleans in lower case, values with spaces, quotes or ``=`` quoted."""
    pairs = []
    for key, value in fields.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float):
            text = f"{value:.2f}"
        else:
            text = str(value)
        if not text or any(char in text for char in ' "='):
            text = json.dumps(text, ensure_ascii=False)
        pairs.append(f"{key}={text}")
    return " ".join(pairs)
