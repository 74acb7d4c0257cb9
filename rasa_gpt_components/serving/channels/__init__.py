"""Messaging channels for Rasa: WeChat Official Account, WeCom, Slack, REST (checked), and the
metrics endpoint (MetricsInput: GET /metrics, docs/observability.md).

Register them in credentials.yml by module path, e.g.
``rasa_gpt_components.serving.WeChatInput:``; see docs/channels.md."""

from rasa_gpt_components.serving.channels.metrics import MetricsInput
from rasa_gpt_components.serving.channels.rest import RestInput
from rasa_gpt_components.serving.channels.slack import SlackInput
from rasa_gpt_components.serving.channels.wechat import WeChatInput, WeChatOutput, WeComInput

__all__ = ["MetricsInput", "RestInput", "SlackInput", "WeChatInput", "WeChatOutput", "WeComInput"]
