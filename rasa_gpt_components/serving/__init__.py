"""Serving infrastructure around the GPT plugin: messaging channels (WeChat,
WeCom, Slack, a checked REST channel, the metrics endpoint), a tracker store that
rides out a database outage and an atomic Redis lock store.

Nothing of the plugin imports this package. The names below are what
``credentials.yml`` and ``endpoints.yml`` use, e.g.
``rasa_gpt_components.serving.WeChatInput:`` or
``type: rasa_gpt_components.serving.AtomicRedisLockStore``; they are imported
lazily, so naming one channel loads only what it needs.
"""

from rasa_gpt_components.lazy import lazy_names

# public name -> module that defines it
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "MetricsInput": "rasa_gpt_components.serving.channels.metrics",
        "RestInput": "rasa_gpt_components.serving.channels.rest",
        "SlackInput": "rasa_gpt_components.serving.channels.slack",
        "WeChatInput": "rasa_gpt_components.serving.channels.wechat",
        "WeChatOutput": "rasa_gpt_components.serving.channels.wechat",
        "WeComInput": "rasa_gpt_components.serving.channels.wechat",
        "ResilientSQLTrackerStore": "rasa_gpt_components.serving.tracker_store",
        "AtomicRedisLockStore": "rasa_gpt_components.serving.lock_store",
    },
)
