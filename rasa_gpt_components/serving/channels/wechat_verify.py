"""What a WeChat or WeCom webhook request must pass before the bot sees it.

Our pre-check first: the body size cap (413), a timestamp within the replay
window and a sane nonce (403), no DTD or entity declaration in the XML (entity
bombs, XXE: 400). Then wechatpy's checks: the plaintext signature
(``wechatpy.utils.check_signature``) or, encrypted, the message signature and
the AES decryption (``WeChatCrypto.decrypt_message``; WeCom's URL handshake:
``check_signature``). Last, a (timestamp, nonce) pair carries one message only
(a plaintext signature does not cover the body). A refusal is a ``BadRequest``
with its HTTP status and a short reason, never a secret."""

import secrets
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import xmltodict
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import WeChatSigner, check_signature

from rasa_gpt_components.serving.channels.seen import Memory

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


def safe_xml(raw: bytes) -> Dict[str, Any]:
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


def _checked(check: Callable[..., Any], *args: Any) -> Any:
    """wechatpy's ``check(*args)``, its refusals as 403."""
    try:
        return check(*args)
    except InvalidSignatureException:
        raise BadRequest(403, "wrong signature") from None
    except Exception as error:  # a wrong app id, padding or base64: not from our account
        raise BadRequest(403, f"cannot decrypt ({type(error).__name__})") from None


@dataclass
class RequestVerifier:
    """Verifies the requests of one account (``crypto``: its wechatpy WeChatCrypto,
    None without an EncodingAESKey); ``used`` remembers the (timestamp, nonce)
    pairs taken, ``clock`` is the time in seconds."""

    token: str
    crypto: Optional[Any]
    mode: str
    always_encrypted: bool
    max_body_bytes: int
    max_clock_skew: float
    used: Memory
    clock: Callable[[], float]

    def _check_time(self, args: Mapping[str, str]) -> Tuple[str, str]:
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if not timestamp.isdigit() or not nonce or len(nonce) > 64 or len(timestamp) > 12:
            raise BadRequest(403, "missing or invalid timestamp/nonce")
        if self.max_clock_skew and abs(self.clock() - int(timestamp)) > self.max_clock_skew:
            raise BadRequest(403, "stale timestamp (replay?)")
        return timestamp, nonce

    def handshake(self, args: Mapping[str, str]) -> str:
        """The URL verification GET: the echostr to answer with (decrypted for WeCom)."""
        timestamp, nonce = self._check_time(args)
        echostr = args.get("echostr", "")
        if not echostr or len(echostr) > 1024:
            raise BadRequest(400, "missing or oversized echostr")
        if self.always_encrypted:
            return _checked(self.crypto.check_signature, args.get("msg_signature"), timestamp, nonce, echostr)
        _checked(check_signature, self.token, args.get("signature"), timestamp, nonce)
        return echostr

    def open(self, body: bytes, args: Mapping[str, str]) -> Tuple[str, bool, str, str]:
        """A POSTed message checked and, if encrypted, decrypted: (its XML,
        encrypted, timestamp, nonce)."""
        if len(body) > self.max_body_bytes:
            raise BadRequest(413, "request too large")
        timestamp, nonce = self._check_time(args)
        encrypted = self.always_encrypted or args.get("encrypt_type") == "aes"
        if encrypted and self.crypto is None:
            raise BadRequest(403, "encrypted message but no EncodingAESKey configured")
        if not encrypted:
            if self.mode == "safe":
                raise BadRequest(403, "plaintext message refused in safe mode")
            _checked(check_signature, self.token, args.get("signature"), timestamp, nonce)
        outer = safe_xml(body)
        if not encrypted:
            return body.decode("utf-8", "replace"), False, timestamp, nonce
        inner = _checked(self.crypto.decrypt_message, outer, args.get("msg_signature"), timestamp, nonce)
        safe_xml(inner.encode("utf-8"))
        return inner, True, timestamp, nonce

    def take(self, timestamp: str, nonce: str, message_key: str) -> None:
        """Refuse a (timestamp, nonce) pair already taken by another message. Taken
        atomically (one SET NX with the shared memory): of two requests with one
        signature arriving at two instances at once, only the first message passes."""
        if not self.used.add((timestamp, nonce), message_key):
            earlier = self.used.get((timestamp, nonce))
            if earlier is not None and earlier != message_key:
                raise BadRequest(403, "signature reused for another message (replay)")

    def seal(self, xml: str) -> str:
        """A reply encrypted and signed for the account."""
        return self.crypto.encrypt_message(xml, secrets.token_hex(8), str(int(self.clock())))
