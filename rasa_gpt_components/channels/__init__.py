"""Messaging channels for Rasa: WeChat Official Account, WeCom and Slack.

Register them in credentials.yml by module path, e.g.
``rasa_gpt_components.channels.WeChatInput:``; see docs/channels.md."""

from rasa_gpt_components.channels.slack import SlackInput
from rasa_gpt_components.channels.wechat import WeChatInput, WeChatOutput, WeComInput

__all__ = ["SlackInput", "WeChatInput", "WeChatOutput", "WeComInput"]
