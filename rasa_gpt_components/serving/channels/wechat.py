"""WeChat Official Account (公众号) and WeCom (企业微信) channels for Rasa 3.6.

Registered in credentials.yml by module path and mounted under
``/webhooks/wechat/webhook`` and ``/webhooks/wecom/webhook``. Signatures, AES
crypto, XML parsing and reply rendering come from wechatpy; this module adds what a
bot needs around them: the 5-second passive-reply window with the customer-service
API for slower answers, one answer per MsgId however often WeChat retries, replay
and size limits, and long answers split to fit WeChat's message limit. With
``shared_memory_url`` (Redis) what the channel remembers (MsgIds, signatures used,
buttons shown, the access token) is shared by every instance of the bot.
See docs/channels.md and docs/deployment.md."""

import asyncio
import hmac
import logging
import os
import secrets
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Set, Text, Tuple

import xmltodict
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message as parse_official_account_message
from wechatpy.crypto import PrpCrypto as OfficialAccountPrpCrypto
from wechatpy.crypto import WeChatCrypto as OfficialAccountCrypto
from wechatpy.enterprise import parse_message as parse_wecom_message
from wechatpy.enterprise.crypto import PrpCrypto as WeComPrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.enterprise.replies import TextReply as WeComTextReply
from wechatpy.replies import TextReply as OfficialAccountTextReply
from wechatpy.utils import WeChatSigner

from rasa_gpt_components.serving.channels.formatting import buttons_as_text, chosen_button, join_replies, split_message
from rasa_gpt_components.serving.channels.metrics import count_requests, set_outcome, timed
from rasa_gpt_components.serving.channels.seen import seen_keys
from rasa_gpt_components.serving.channels.wechat_api import OFFICIAL_ACCOUNT_API, WECOM_API, WeChatAPI, WeChatAPIError
from rasa_gpt_components.metrics import MESSAGE_API_FAILURES
from rasa_gpt_components.text import clean_text

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
_FORBIDDEN_XML = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


class BadRequest(Exception):
    """A request to refuse: ``status`` and a short reason (never secret or personal)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    """WeChat's request signature: SHA-1 of the sorted, concatenated parts."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _same(expected: str, given: Optional[str]) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), (given or "").encode("utf-8", "replace"))


def _xml(raw: bytes) -> Dict[str, Any]:
    """The ``<xml>`` element of a WeChat message as a dict; no DTDs, no entities."""
    if any(marker in raw for marker in _FORBIDDEN_XML):
        raise BadRequest(400, "XML with a DTD or entities is not accepted")
    try:
        root = xmltodict.parse(raw, disable_entities=True).get("xml")
    except Exception:
        raise BadRequest(400, "malformed XML") from None
    if not isinstance(root, dict):
        raise BadRequest(400, "not a WeChat message")
    return root


def _mask(user: str) -> str:
    """A user id for logs: enough to correlate, not the whole OpenID."""
    return (user[:4] + "…") if user else "?"


class WeChatOutput(OutputChannel):
    """The bot's replies to one WeChat message as text (buttons as numbered lines).

    Collected while the request waits for them; with ``api`` set (messages Rasa
    sends outside a request, e.g. through its HTTP API) each is sent right away."""

    def __init__(self, api: Optional[WeChatAPI] = None, max_message_bytes: int = 2048) -> None:
        self.texts: List[str] = []
        self.buttons: Optional[List[Dict[str, Any]]] = None
        self.api = api
        self.max_message_bytes = max_message_bytes

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    async def _add(self, recipient_id: Text, text: Text) -> None:
        if self.api is None:
            self.texts.append(text)
            return
        for part in split_message(text, self.max_message_bytes):
            await self.api.send_text(recipient_id, part)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._add(recipient_id, text)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        self.buttons = list(buttons)
        await self._add(recipient_id, buttons_as_text(text, buttons))

    async def send_quick_replies(self, recipient_id: Text, text: Text,
                                 quick_replies: List[Dict[Text, Any]], **kwargs: Any) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._add(recipient_id, image)

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        await self._add(recipient_id, attachment)

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        text = json_message.get("text") if isinstance(json_message, dict) else None
        if isinstance(text, str) and text:
            await self._add(recipient_id, text)
        else:
            logger.debug("wechat: custom message without text not sent")


class _WeChatChannel(InputChannel):
    """What the Official Account and WeCom callbacks share; subclasses say how
    they differ (names, crypto, parser, reply, API)."""

    env_prefix = ""
    secret_env = ""
    # (credentials.yml key, environment variable after env_prefix, __init__ argument)
    settings: Tuple[Tuple[str, str, str], ...] = ()
    needs_agent_id = False
    default_api = ""
    always_encrypted = False
    parse: Callable[[str], Any]
    prp_crypto: Any
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
        self.crypto = None
        self.key: Optional[bytes] = None
        if not self.problem and self.encoding_aes_key:
            self.crypto = self.crypto_class(self.token, self.encoding_aes_key, self.app_id)
            self.key = self.crypto.key
        # what the channel remembers: in this process, or in Redis for every instance
        prefix = f"rasa_gpt_components:{self.name()}:{self.app_id}:"
        skew = float(self.options["max_clock_skew"] or 0)
        self._requests = seen_keys(shared_memory_url, prefix + "request:",  # (timestamp, nonce) -> message key
                                   ttl=2 * skew + 60 if skew else 86_400)
        self._messages = seen_keys(shared_memory_url, prefix + "message:", ttl=3_600)  # MsgIds (retried for 15 s)
        self._buttons = seen_keys(shared_memory_url, prefix + "buttons:", ttl=3_600, max_keys=50_000)  # user -> buttons
        self.api = None
        if secret and (agent_id or not self.needs_agent_id):
            shared_token = seen_keys(shared_memory_url, prefix + "token:", ttl=7_200) if shared_memory_url else None
            self.api = WeChatAPI(api_base_url or self.default_api, self.app_id, secret, agent_id,
                                 shared=shared_token)
        self._tasks: Set[asyncio.Task] = set()
        if self.problem:
            logger.warning("%s channel is not configured (%s): its webhook answers 503 to every request",
                           self.name(), self.problem)
        elif self.api is None:
            logger.warning("%s: no %s set, so answers slower than %.1f s cannot be delivered",
                           self.name(), self.secret_env, self.options["reply_budget"])

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
                    echo = self._handshake(request)
                    set_outcome(request, "handshake")
                    return response.text(echo)
                return await self._receive(request, on_new_message)
            except BadRequest as refused:
                logger.warning("%s: request refused (%s, %s)", self.name(), refused.status, refused.reason)
                return response.text(refused.reason, status=refused.status)

        return webhook

    def _check_time(self, request: Request) -> Tuple[str, str]:
        timestamp, nonce = request.args.get("timestamp", ""), request.args.get("nonce", "")
        if not timestamp.isdigit() or not nonce or len(nonce) > 64 or len(timestamp) > 12:
            raise BadRequest(403, "missing or invalid timestamp/nonce")
        skew = float(self.options["max_clock_skew"] or 0)
        if skew and abs(self.clock() - int(timestamp)) > skew:
            raise BadRequest(403, "stale timestamp (replay?)")
        return timestamp, nonce

    def _handshake(self, request: Request) -> str:
        """The URL verification GET: answer with the echostr (decrypted for WeCom)."""
        timestamp, nonce = self._check_time(request)
        echostr = request.args.get("echostr", "")
        if not echostr or len(echostr) > 1024:
            raise BadRequest(400, "missing or oversized echostr")
        if self.always_encrypted:
            if not _same(signature(self.token, timestamp, nonce, echostr), request.args.get("msg_signature")):
                raise BadRequest(403, "wrong signature")
            return self._decrypt(echostr)
        if not _same(signature(self.token, timestamp, nonce), request.args.get("signature")):
            raise BadRequest(403, "wrong signature")
        return echostr

    def _decrypt(self, encrypted: str) -> str:
        try:
            return self.prp_crypto(self.key).decrypt(encrypted, self.app_id)
        except Exception as error:  # a wrong app id, padding or base64: not from our account
            raise BadRequest(403, f"cannot decrypt ({type(error).__name__})") from None

    def _open(self, request: Request) -> Tuple[Any, bool, str, str]:
        """Check and open a POSTed message: (message, encrypted, timestamp, nonce)."""
        body = request.body or b""
        if len(body) > int(self.options["max_body_bytes"]):
            raise BadRequest(413, "request too large")
        timestamp, nonce = self._check_time(request)
        encrypted = self.always_encrypted or request.args.get("encrypt_type") == "aes"
        if encrypted and self.key is None:
            raise BadRequest(403, "encrypted message but no EncodingAESKey configured")
        if not encrypted:
            if self.mode == "safe":
                raise BadRequest(403, "plaintext message refused in safe mode")
            if not _same(signature(self.token, timestamp, nonce), request.args.get("signature")):
                raise BadRequest(403, "wrong signature")
        outer = _xml(body)
        if encrypted:
            ciphertext = outer.get("Encrypt")
            if not isinstance(ciphertext, str) or not _same(
                    signature(self.token, timestamp, nonce, ciphertext), request.args.get("msg_signature")):
                raise BadRequest(403, "wrong signature")
            inner = self._decrypt(ciphertext)
            _xml(inner.encode("utf-8"))
            raw = inner
        else:
            raw = body.decode("utf-8", "replace")
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
            xml = self.crypto.encrypt_message(xml, secrets.token_hex(8), str(int(self.clock())))
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
        # taken atomically (one SET NX with the shared memory): of two requests with one
        # signature arriving at two instances at once, only the first message passes
        if not self._requests.add((timestamp, nonce), key):
            earlier = self._requests.get((timestamp, nonce))
            if earlier is not None and earlier != key:
                raise BadRequest(403, "signature reused for another message (replay)")
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
                        self.name(), self._describe(message), _mask(user), self.options["reply_budget"])
            self._in_background(self._deliver_late(task, output, user))
            set_outcome(request, "answered_async")
            return response.text(SUCCESS)
        parts = self._parts(task, output, user)
        logger.info("%s: %s from %s answered in %.2f s (%d part(s))", self.name(), self._describe(message), _mask(user),
                    time.monotonic() - started, len(parts))
        if not parts:
            set_outcome(request, "no_answer")
            return response.text(SUCCESS)
        if len(parts) > 1 and self.api is not None:  # in order, all through the API
            self._in_background(self._send(user, parts))
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
            logger.error("%s: the bot failed on a message from %s: %s", self.name(), _mask(user),
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
        await self._send(user, self._parts(task, output, user))

    async def _send(self, user: str, parts: Sequence[str]) -> None:
        if self.api is None:
            logger.error("%s: an answer for %s was not delivered: no secret for the message API",
                         self.name(), _mask(user))
            return
        for number, part in enumerate(parts, 1):
            try:
                await self.api.send_text(user, part)
            except WeChatAPIError as error:
                MESSAGE_API_FAILURES.labels(self.name()).inc()
                logger.error("%s: part %d/%d for %s not delivered: %s", self.name(), number, len(parts),
                             _mask(user), error)
                return

    def _in_background(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def get_output_channel(self) -> OutputChannel:
        """For messages Rasa sends on its own (e.g. its HTTP API): straight through the API."""
        return WeChatOutput(self.api, int(self.options["max_message_bytes"]))


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
    prp_crypto = OfficialAccountPrpCrypto
    crypto_class = OfficialAccountCrypto
    text_reply = OfficialAccountTextReply
    parse = staticmethod(parse_official_account_message)

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
    prp_crypto = WeComPrpCrypto
    crypto_class = WeComCrypto
    text_reply = WeComTextReply
    parse = staticmethod(parse_wecom_message)

    @classmethod
    def name(cls) -> Text:
        return "wecom"
