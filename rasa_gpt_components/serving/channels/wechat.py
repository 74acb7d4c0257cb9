"""WeChat Official Account (公众号) and WeCom (企业微信) channels for Rasa 3.6.

Registered in credentials.yml by module path and mounted under
``/webhooks/wechat/webhook`` and ``/webhooks/wecom/webhook``. This module is the
input channel: configuration, parsing (wechatpy), the 5-second passive-reply
window, one answer per MsgId however often WeChat retries, and buttons chosen
by number. Around it, each in its own module:

- ``wechat_verify``: what a request must pass first (size, replay window, no
  DTD, then wechatpy's signature and AES checks);
- ``wechat_output``: the answers, collected for the passive reply or sent
  through the message API (late, or in several parts);
- ``wechat_api``: the message API, wechatpy's clients with a shared token.

With ``shared_memory_url`` (Redis) what the channel remembers (MsgIds,
signatures used, buttons shown, the access token) is shared by every instance
of the bot. See docs/channels.md and docs/deployment.md."""

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message as parse_official_account_message
from wechatpy.crypto import WeChatCrypto as OfficialAccountCrypto
from wechatpy.enterprise import parse_message as parse_wecom_message
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.enterprise.replies import TextReply as WeComTextReply
from wechatpy.replies import TextReply as OfficialAccountTextReply

from rasa_gpt_components.serving.channels.formatting import chosen_button, join_replies, split_message
from rasa_gpt_components.serving.channels.metrics import count_requests, set_outcome, timed
from rasa_gpt_components.serving.channels.seen import seen_keys
from rasa_gpt_components.serving.channels.wechat_api import (OFFICIAL_ACCOUNT_API, WECOM_API, OfficialAccountClient,
                                                             WeComClient, token_storage)
from rasa_gpt_components.serving.channels.wechat_output import MessageSender, WeChatOutput, mask
from rasa_gpt_components.serving.channels.wechat_verify import BadRequest, RequestVerifier, signature
from rasa_gpt_components.text import clean_text

__all__ = ["BadRequest", "WeChatInput", "WeChatOutput", "WeComInput", "signature"]

logger = logging.getLogger(__name__)

DEFAULTS: Dict[str, Any] = {
    # seconds the bot has to answer inside WeChat's 5-second window; slower
    # answers are acknowledged with "success" and sent through the message API
    "reply_budget": 4.0,
    # requests whose timestamp is further than this from our clock are refused
    # as replays (seconds; 0 turns the check off)
    "max_clock_skew": 300,
    "max_body_bytes": 20_000,
    # WeChat's limit for one text message
    "max_message_bytes": 2048,
    "max_text_chars": 2000,
    # sent when someone follows the account; text starting with "/" goes to the
    # bot as an intent (e.g. "/greet") so its own greeting answers
    "welcome": "您好，欢迎关注！请问有什么可以帮您？",
    "text_only_message": "抱歉，目前只能处理文字消息，请用文字描述您的问题。",
    "voice_unrecognised_message": "抱歉，没有听清您的语音，请用文字再说一次。",
    "busy_message": "抱歉，系统繁忙，请稍后再试。",
}
SUCCESS = "success"  # WeChat's "received, no passive reply"


class _WeChatChannel(InputChannel):
    """What the Official Account and WeCom callbacks share; subclasses say how
    they differ (names, crypto, parser, reply, API client)."""

    env_prefix = ""
    secret_env = ""
    # (credentials.yml key, environment variable after env_prefix, __init__ argument)
    settings: Tuple[Tuple[str, str, str], ...] = ()
    needs_agent_id = False
    default_api = ""
    always_encrypted = False
    parse: Callable[[str], Any]
    crypto_class: Any
    text_reply: Any

    def __init__(self, token: str, app_id: str, secret: Optional[str] = None,
                 encoding_aes_key: Optional[str] = None, agent_id: Optional[str] = None,
                 mode: Optional[str] = None, api_base_url: Optional[str] = None,
                 shared_memory_url: Optional[str] = None, **options: Any) -> None:
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"{self.name()}: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.options = {**DEFAULTS, **options}
        self.token = token or ""
        self.app_id = app_id or ""
        self.encoding_aes_key = encoding_aes_key or ""
        self.mode = mode or ("safe" if self.always_encrypted or self.encoding_aes_key else "plaintext")
        self.clock: Callable[[], float] = time.time
        self.problem = self._configuration_problem()
        crypto = None
        if not self.problem and self.encoding_aes_key:
            crypto = self.crypto_class(self.token, self.encoding_aes_key, self.app_id)
        # what the channel remembers: in this process, or in Redis for every instance
        prefix = f"rasa_gpt_components:{self.name()}:{self.app_id}:"
        skew = float(self.options["max_clock_skew"] or 0)
        used = seen_keys(shared_memory_url, prefix + "request:",  # (timestamp, nonce) -> message key
                         ttl=2 * skew + 60 if skew else 86_400)
        self.verifier = RequestVerifier(self.token, crypto, self.mode, self.always_encrypted,
                                        int(self.options["max_body_bytes"]), skew, used, lambda: self.clock())
        self._messages = seen_keys(shared_memory_url, prefix + "message:", ttl=3_600)  # MsgIds (retried for 15 s)
        self._buttons = seen_keys(shared_memory_url, prefix + "buttons:", ttl=3_600, max_keys=50_000)  # user -> buttons
        api = None
        if secret and (agent_id or not self.needs_agent_id):
            tokens = token_storage(shared_memory_url, prefix + "token:")
            api = self._api_client(api_base_url or self.default_api, secret, agent_id, tokens)
        self.sender = MessageSender(self.name(), api)
        if self.problem:
            logger.warning("%s channel is not configured (%s): its webhook answers 503 to every request",
                           self.name(), self.problem)
        elif api is None:
            logger.warning("%s: no %s set, so answers slower than %.1f s cannot be delivered",
                           self.name(), self.secret_env, self.options["reply_budget"])

    def _api_client(self, base_url: str, secret: str, agent_id: Optional[str], tokens: Any) -> Any:
        raise NotImplementedError

    def _configuration_problem(self) -> Optional[str]:
        if self.mode not in ("plaintext", "compatible", "safe"):
            return f"mode must be plaintext, compatible or safe, not {self.mode!r}"
        if not self.token:
            return f"no token (set {self.env_prefix}TOKEN)"
        if self.mode != "plaintext" and not (self.encoding_aes_key and self.app_id):
            return f"{self.mode} mode needs {self.env_prefix}ENCODING_AES_KEY and the app id"
        if self.encoding_aes_key and len(self.encoding_aes_key) != 43:
            return "the EncodingAESKey must be 43 characters"
        return None

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """The channel from its credentials.yml entry; each of ``settings`` not given
        there is read from its environment variable (``env_prefix`` + name)."""
        credentials = dict(credentials or {})
        values: Dict[str, Optional[str]] = {}
        for key, env, argument in cls.settings:
            value = credentials.pop(key, None)
            if value in (None, ""):
                value = os.environ.get(cls.env_prefix + env)
            values[argument] = None if value in (None, "") else str(value)
        return cls(**values, **credentials)

    # --- the HTTP side -------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"{self.name()}_webhook", __name__)
        count_requests(webhook, self.name())
        on_new_message = timed(self.name(), on_new_message)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if not self.problem else "not configured"})

        @webhook.route("/webhook", methods=["GET", "POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.problem:
                return response.text("channel not configured", status=503)
            try:
                if request.method == "GET":
                    echo = self.verifier.handshake(request.args)
                    set_outcome(request, "handshake")
                    return response.text(echo)
                return await self._receive(request, on_new_message)
            except BadRequest as refused:
                logger.warning("%s: request refused (%s, %s)", self.name(), refused.status, refused.reason)
                return response.text(refused.reason, status=refused.status)

        return webhook

    def _open(self, request: Request) -> Tuple[Any, bool, str, str]:
        """Check and parse a POSTed message: (message, encrypted, timestamp, nonce)."""
        raw, encrypted, timestamp, nonce = self.verifier.open(request.body or b"", request.args)
        try:
            message = self.parse(raw)
        except Exception:
            raise BadRequest(400, "not a WeChat message") from None
        if message is None or not message.source or len(str(message.source)) > 128:
            raise BadRequest(400, "not a WeChat message")
        return message, encrypted, timestamp, nonce

    @staticmethod
    def _describe(message: Any) -> str:
        """A message for the logs, without the sender's id."""
        return f"MsgId {message.id}" if getattr(message, "id", None) else f"{getattr(message, 'event', '?')} event"

    @staticmethod
    def _message_key(message: Any) -> str:
        if getattr(message, "id", None):
            return f"id:{message.id}"
        # events carry no MsgId: WeChat's advice is FromUserName + CreateTime
        return f"event:{message.source}:{message.create_time}:{getattr(message, 'event', '')}"

    def _reply(self, message: Any, text: str, encrypted: bool) -> HTTPResponse:
        xml = self.text_reply(message=message, content=text.replace("]]>", "]] >")).render()
        if encrypted:
            xml = self.verifier.seal(xml)
        return response.text(xml, content_type="application/xml")

    def _user_text(self, message: Any) -> Tuple[Optional[str], Optional[str]]:
        """(text for the bot, or a fixed answer) for one incoming message."""
        kind = message.type
        if kind == "text":
            return clean_text(message.content, int(self.options["max_text_chars"])) or None, None
        if kind == "voice":
            heard = clean_text(getattr(message, "recognition", None) or "", int(self.options["max_text_chars"]))
            return (heard, None) if heard else (None, self.options["voice_unrecognised_message"])
        if kind == "event":
            if str(getattr(message, "event", "")).startswith("subscribe"):
                welcome = str(self.options["welcome"])
                return (welcome, None) if welcome.startswith("/") else (None, welcome)
            return None, None  # unsubscribe, menu clicks without a handler, ...: nothing to say
        return None, self.options["text_only_message"]

    async def _receive(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> HTTPResponse:
        message, encrypted, timestamp, nonce = self._open(request)
        key = self._message_key(message)
        self.verifier.take(timestamp, nonce, key)
        if not self._messages.add(key):
            logger.info("%s: %s seen before (a retry or a replay), not processed again",
                        self.name(), self._describe(message))
            set_outcome(request, "duplicate")
            return response.text(SUCCESS)

        text, fixed = self._user_text(message)
        if text is None:
            set_outcome(request, "fixed_reply" if fixed else "ignored")
            return self._reply(message, fixed, encrypted) if fixed else response.text(SUCCESS)
        user = str(message.source)
        text = chosen_button(text, self._buttons.get(user)) or text
        output = WeChatOutput()
        metadata = {"wechat": {"msg_type": message.type, "account": str(message.target), "encrypted": encrypted}}
        started = time.monotonic()
        task = asyncio.create_task(on_new_message(
            UserMessage(text, output, user, input_channel=self.name(), metadata=metadata)))
        done, _ = await asyncio.wait({task}, timeout=float(self.options["reply_budget"]))
        if not done:
            logger.info("%s: %s from %s not answered within %.3g s, the answer follows through the API",
                        self.name(), self._describe(message), mask(user), self.options["reply_budget"])
            self.sender.in_background(self._deliver_late(task, output, user))
            set_outcome(request, "answered_async")
            return response.text(SUCCESS)
        parts = self._parts(task, output, user)
        logger.info("%s: %s from %s answered in %.2f s (%d part(s))", self.name(), self._describe(message), mask(user),
                    time.monotonic() - started, len(parts))
        if not parts:
            set_outcome(request, "no_answer")
            return response.text(SUCCESS)
        if len(parts) > 1 and self.sender.api is not None:  # in order, all through the API
            self.sender.in_background(self.sender.send(user, parts))
            set_outcome(request, "answered_async")
            return response.text(SUCCESS)
        set_outcome(request, "answered_passive")
        if len(parts) > 1:
            logger.warning("%s: answer cut to one message: no secret for the message API", self.name())
        return self._reply(message, parts[0], encrypted)

    def _parts(self, task: asyncio.Task, output: WeChatOutput, user: str) -> List[str]:
        """The finished turn's replies as WeChat-sized messages (the busy message if it failed)."""
        error = task.exception()
        if error is not None:
            logger.error("%s: the bot failed on a message from %s: %s", self.name(), mask(user),
                         f"{type(error).__name__}: {error}", exc_info=error)
            return [str(self.options["busy_message"])]
        if output.buttons:
            self._buttons.put(user, output.buttons)
        else:
            self._buttons.discard(user)
        return split_message(join_replies(output.texts), int(self.options["max_message_bytes"]))

    async def _deliver_late(self, task: asyncio.Task, output: WeChatOutput, user: str) -> None:
        try:
            await task
        except Exception:
            pass  # reported by _parts
        await self.sender.send(user, self._parts(task, output, user))

    def get_output_channel(self) -> OutputChannel:
        """For messages Rasa sends on its own (e.g. its HTTP API): straight through the API."""
        return WeChatOutput(self.sender.api, int(self.options["max_message_bytes"]))


class WeChatInput(_WeChatChannel):
    """A WeChat Official Account (公众号) callback, in plaintext, compatible or safe mode.

    credentials.yml::

        rasa_gpt_components.serving.WeChatInput:
          mode: safe              # plaintext | compatible | safe, as set in the account
          # token, app_id, app_secret, encoding_aes_key: here or in WECHAT_* variables
    """

    env_prefix = "WECHAT_"
    secret_env = "WECHAT_APP_SECRET"
    settings = (("token", "TOKEN", "token"), ("app_id", "APP_ID", "app_id"), ("app_secret", "APP_SECRET", "secret"),
                ("encoding_aes_key", "ENCODING_AES_KEY", "encoding_aes_key"),
                ("api_base_url", "API_BASE_URL", "api_base_url"),
                ("shared_memory_url", "SHARED_MEMORY_URL", "shared_memory_url"))
    default_api = OFFICIAL_ACCOUNT_API
    crypto_class = OfficialAccountCrypto
    text_reply = OfficialAccountTextReply
    parse = staticmethod(parse_official_account_message)

    def _api_client(self, base_url: str, secret: str, agent_id: Optional[str], tokens: Any) -> OfficialAccountClient:
        return OfficialAccountClient(base_url, self.app_id, secret, session=tokens)

    @classmethod
    def name(cls) -> Text:
        return "wechat"


class WeComInput(_WeChatChannel):
    """A WeCom (企业微信) application's callback; WeCom always encrypts.

    credentials.yml::

        rasa_gpt_components.serving.WeComInput:
          # token, corp_id, corp_secret, agent_id, encoding_aes_key: here or in WECOM_* variables
    """

    env_prefix = "WECOM_"
    secret_env = "WECOM_CORP_SECRET and WECOM_AGENT_ID"
    settings = (("token", "TOKEN", "token"), ("corp_id", "CORP_ID", "app_id"), ("corp_secret", "CORP_SECRET", "secret"),
                ("agent_id", "AGENT_ID", "agent_id"), ("encoding_aes_key", "ENCODING_AES_KEY", "encoding_aes_key"),
                ("api_base_url", "API_BASE_URL", "api_base_url"),
                ("shared_memory_url", "SHARED_MEMORY_URL", "shared_memory_url"))
    needs_agent_id = True
    default_api = WECOM_API
    always_encrypted = True
    crypto_class = WeComCrypto
    text_reply = WeComTextReply
    parse = staticmethod(parse_wecom_message)

    def _api_client(self, base_url: str, secret: str, agent_id: Optional[str], tokens: Any) -> WeComClient:
        return WeComClient(base_url, self.app_id, secret, str(agent_id), session=tokens)

    @classmethod
    def name(cls) -> Text:
        return "wecom"
