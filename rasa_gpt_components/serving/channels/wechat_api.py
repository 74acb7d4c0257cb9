"""The WeChat customer-service message API (Official Account) and the WeCom
application message API, through wechatpy's clients: answers sent to a user
after the 5-second passive-reply window has passed.

wechatpy fetches the access token, keeps it in its session storage and, when
the API reports it invalid or expired (40001, 40014, 42001), fetches a new one
and tries again. What this module adds:

- the base URL from the channel's ``api_base_url`` (a proxy, or a stand-in in
  tests), also for the token request, whose URL wechatpy fixes;
- a timeout on every request (wechatpy's token request has none);
- one new token per message at most (wechatpy would try again for as long as
  the API refuses), and after a refusal the token another instance stored, if
  there is one, before fetching (each fetch invalidates the tokens before it);
- the shared token storage (``TokenStorage``) over the channel's Redis memory;
- errors as ``WeChatAPIError``, whose text holds no secret, no token and no
  message text; the synchronous client run off the event loop;
- the secret and the token redacted from urllib3's request lines (logged at
  DEBUG level with the whole URL)."""

import asyncio
import logging
import re
import threading
from typing import Any, Dict, Optional, Tuple

import requests
from wechatpy import WeChatClient as OfficialAccountWeChatClient
from wechatpy.enterprise import WeChatClient as WeComWeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.session.memorystorage import MemoryStorage

from rasa_gpt_components.serving.channels.seen import RedisSeenKeys, seen_keys

_CREDENTIAL_IN_URL = re.compile(r"((?:secret|corpsecret|access_token)=)[^&\s\"]*")


def _redact_credentials(record: logging.LogRecord) -> bool:
    if isinstance(record.args, tuple):
        record.args = tuple(_CREDENTIAL_IN_URL.sub(r"\1***", arg) if isinstance(arg, str) else arg
                            for arg in record.args)
    return True


logging.getLogger("urllib3.connectionpool").addFilter(_redact_credentials)

OFFICIAL_ACCOUNT_API = "https://api.weixin.qq.com"
WECOM_API = "https://qyapi.weixin.qq.com"


class WeChatAPIError(Exception):
    """The API answered with an error (errcode) or could not be reached."""


class TokenStorage(SessionStorage):
    """wechatpy's session storage in the channel's Redis memory, so that every
    instance of the bot uses the one access token fetched last (keys hashed, each
    with its expiry). If Redis cannot be reached, an instance goes on with the
    token it fetched itself."""

    def __init__(self, shared: RedisSeenKeys) -> None:
        self.shared = shared
        self.local = MemoryStorage()

    def get(self, key: str, default: Any = None) -> Any:
        value = self.shared.get(key)
        return self.local.get(key, default) if value is None else value

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        self.local.set(key, value)
        self.shared.put(key, value, ttl=ttl)

    def delete(self, key: str) -> None:
        self.local.delete(key)
        self.shared.discard(key)


def token_storage(shared_memory_url: Optional[str], prefix: str) -> SessionStorage:
    """Where a client keeps its access token: in the Redis memory at
    ``shared_memory_url`` (keys under ``prefix``), or without one in this process."""
    if not shared_memory_url:
        return MemoryStorage()
    return TokenStorage(seen_keys(shared_memory_url, prefix, ttl=7_200))


class _TimedSession(requests.Session):
    """A requests session whose requests time out after ``timeout`` seconds unless told otherwise."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return super().request(*args, **kwargs)


class MessageClient:
    """What our two clients add to wechatpy's (see the module's docstring).
    Subclasses name the token request and how a text is sent."""

    message: Any
    session: Any
    access_token_key: str

    def _configure(self, base_url: str, timeout: float) -> None:
        self.API_BASE_URL = base_url.rstrip("/") + "/cgi-bin/"
        self._http = _TimedSession(timeout)
        self._call = threading.local()  # the token of the message being sent, per thread

    def _token_request(self) -> Tuple[str, Dict[str, str]]:
        raise NotImplementedError

    def _send_text(self, user: str, text: str) -> Any:
        raise NotImplementedError

    @property
    def access_token(self) -> str:
        token = super().access_token  # type: ignore[misc]
        self._call.token = token
        return token

    def fetch_access_token(self) -> Dict[str, Any]:
        """Called by wechatpy when it has no usable token, and again when the API
        refused the one a message was sent with."""
        refused = getattr(self._call, "token", None)
        if refused is not None:
            if getattr(self._call, "refreshed", False):
                raise WeChatAPIError("message not sent: the new access token was refused too")
            self._call.refreshed = True
            stored = self.session.get(self.access_token_key)
            if stored and stored != refused:  # another instance has fetched a newer one
                self._call.token = stored
                return {"access_token": stored}
        endpoint, params = self._token_request()
        try:
            result = self._fetch_access_token(self.API_BASE_URL + endpoint, params)  # type: ignore[attr-defined]
        except requests.RequestException as error:  # its text holds the URL, with the secret
            raise WeChatAPIError(f"/cgi-bin/{endpoint}: {type(error).__name__}") from None
        except WeChatClientException as error:
            raise WeChatAPIError(f"access token refused: errcode {error.errcode}") from None
        except (KeyError, ValueError):
            raise WeChatAPIError("access token refused: unexpected answer") from None
        self._call.token = result["access_token"]
        return result

    async def send(self, user: str, text: str) -> None:
        """Send ``text`` to ``user`` (an OpenID, or a WeCom UserID), off the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self._send, user, text)

    def _send(self, user: str, text: str) -> None:
        self._call.__dict__.clear()
        try:
            self._send_text(user, text)
        except WeChatClientException as error:
            raise WeChatAPIError(f"message not sent: errcode {error.errcode} {error.errmsg or ''}") from None
        except requests.RequestException as error:  # its text holds the URL, with the token
            raise WeChatAPIError(f"message send: {type(error).__name__}") from None
        except ValueError:
            raise WeChatAPIError("message send: unexpected answer") from None


class OfficialAccountClient(MessageClient, OfficialAccountWeChatClient):
    """An Official Account's customer-service messages (/cgi-bin/message/custom/send)."""

    def __init__(self, base_url: str, app_id: str, secret: str, session: Optional[SessionStorage] = None,
                 timeout: float = 5.0) -> None:
        super().__init__(app_id, secret, session=session, timeout=timeout)
        self._configure(base_url, timeout)

    def _token_request(self) -> Tuple[str, Dict[str, str]]:
        return "token", {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}

    def _send_text(self, user: str, text: str) -> Any:
        return self.message.send_text(user, text)


class WeComClient(MessageClient, WeComWeChatClient):
    """A WeCom application's messages (/cgi-bin/message/send)."""

    def __init__(self, base_url: str, corp_id: str, secret: str, agent_id: str,
                 session: Optional[SessionStorage] = None, timeout: float = 5.0) -> None:
        super().__init__(corp_id, secret, session=session, timeout=timeout)
        self.agent_id = int(agent_id) if str(agent_id).isdigit() else agent_id
        self._configure(base_url, timeout)

    def _token_request(self) -> Tuple[str, Dict[str, str]]:
        return "gettoken", {"corpid": self.corp_id, "corpsecret": self.secret}

    def _send_text(self, user: str, text: str) -> Any:
        return self.message.send_text(self.agent_id, user, text)
