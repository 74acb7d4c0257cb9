"""The WeChat customer-service message API (Official Account) and the WeCom
application message API: an access token fetched, cached and refreshed, and text
messages sent to a user after the 5-second passive-reply window has passed.

The base URL is configurable so that tests (and proxies) can stand in for
api.weixin.qq.com / qyapi.weixin.qq.com."""

import asyncio
import json
import logging
import time
from typing import Any, Dict, Optional

import aiohttp

from rasa_gpt_components.serving.channels.seen import RedisSeenKeys

logger = logging.getLogger(__name__)

OFFICIAL_ACCOUNT_API = "https://api.weixin.qq.com"
WECOM_API = "https://qyapi.weixin.qq.com"
# errcodes that mean "this access token is no longer valid": fetch a new one
TOKEN_ERRORS = {40001, 40014, 42001}


class WeChatAPIError(Exception):
    """The API answered with an error (errcode) or could not be reached."""


class WeChatAPI:
    """Sends text messages through the Official Account's customer-service API
    (``corp_secret`` and ``agent_id`` unset) or a WeCom application (both set)."""

    def __init__(self, base_url: str, app_id: str, secret: str, agent_id: Optional[str] = None,
                 timeout: float = 5.0, refresh_margin: float = 300.0,
                 shared: Optional[RedisSeenKeys] = None) -> None:
        """``shared``: where the instances of the bot keep the one token they all use
        (fetching a new one invalidates the others' soon after)."""
        self.shared = shared
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.secret = secret
        self.agent_id = agent_id
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.refresh_margin = refresh_margin
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def is_wecom(self) -> bool:
        return self.agent_id is not None

    async def _request(self, method: str, path: str, params: Dict[str, str],
                       body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                async with session.request(method, self.base_url + path, params=params, data=data,
                                           headers={"Content-Type": "application/json"}) as reply:
                    payload = await reply.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise WeChatAPIError(f"{path}: {type(error).__name__}: {error}") from None
        if not isinstance(payload, dict):
            raise WeChatAPIError(f"{path}: unexpected answer")
        return payload

    def _shared_token(self, rejected: Optional[str]) -> Optional[str]:
        """The token another instance fetched (not the one just rejected), kept as ours."""
        if self.shared is None:
            return None
        entry = self.shared.get(self.app_id)
        if not isinstance(entry, dict) or not entry.get("token") or entry["token"] == rejected:
            return None
        self._token = str(entry["token"])
        self._expires_at = time.monotonic() + max(float(entry.get("expires_at", 0)) - time.time(), 0.0)
        return self._token

    async def access_token(self, refresh: bool = False) -> str:
        """A valid access token, fetched once and reused until shortly before it expires
        (with ``shared``, fetched by one instance and used by all)."""
        async with self._lock:
            stale = refresh or self._token is None or time.monotonic() >= self._expires_at
            if stale and self._shared_token(rejected=self._token if refresh else None) is None:
                if self.is_wecom:
                    params = {"corpid": self.app_id, "corpsecret": self.secret}
                    payload = await self._request("GET", "/cgi-bin/gettoken", params)
                else:
                    params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret}
                    payload = await self._request("GET", "/cgi-bin/token", params)
                if not payload.get("access_token"):
                    raise WeChatAPIError(f"access token refused: errcode {payload.get('errcode')}")
                self._token = str(payload["access_token"])
                lifetime = float(payload.get("expires_in", 7200))
                usable = max(lifetime - self.refresh_margin, lifetime / 2)
                self._expires_at = time.monotonic() + usable
                if self.shared is not None:
                    self.shared.put(self.app_id, {"token": self._token, "expires_at": time.time() + usable}, ttl=usable)
            return self._token

    async def send_text(self, user: str, text: str) -> None:
        """Send ``text`` to ``user`` (an OpenID, or a WeCom UserID)."""
        body: Dict[str, Any] = {"touser": user, "msgtype": "text", "text": {"content": text}}
        path = "/cgi-bin/message/custom/send"
        if self.is_wecom:
            body["agentid"] = int(self.agent_id) if str(self.agent_id).isdigit() else self.agent_id
            path = "/cgi-bin/message/send"
        for attempt in range(2):
            token = await self.access_token(refresh=attempt > 0)
            payload = await self._request("POST", path, {"access_token": token}, body)
            errcode = int(payload.get("errcode", 0) or 0)
            if errcode == 0:
                return
            if errcode not in TOKEN_ERRORS:
                break
            logger.info("WeChat access token rejected (errcode %s); fetching a new one", errcode)
        raise WeChatAPIError(f"message not sent: errcode {payload.get('errcode')} {payload.get('errmsg', '')}")
