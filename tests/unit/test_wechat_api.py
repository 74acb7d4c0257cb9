"""The WeChat message API client against a stand-in server on 127.0.0.1: the token
is fetched once and reused, refreshed when reported expired, and failures are
reported as WeChatAPIError rather than raised as whatever the HTTP stack threw."""

import asyncio

import pytest

from rasa_gpt_components.serving.channels.wechat_api import WeChatAPI, WeChatAPIError
from tests.fixtures.fake_apis import FakeAPIs
from tests.integration.conftest import free_port


@pytest.fixture
def apis():
    server = FakeAPIs()
    yield server
    server.close()


def test_the_token_is_refreshed_once_when_expired_then_reused(apis):
    api = WeChatAPI(apis.url, "wxapp", "secret")

    async def conversation():
        await api.send_text("openid-1", "您好")
        await api.send_text("openid-1", "再见")

    asyncio.run(conversation())
    assert [r["path"] for r in apis.token_requests] == ["/cgi-bin/token", "/cgi-bin/token"]
    assert apis.token_requests[0]["appid"] == "wxapp" and apis.token_requests[0]["secret"] == "secret"
    assert apis.wechat_texts("openid-1") == ["您好", "再见"]  # UTF-8 JSON, not \\u escapes
    assert {m["access_token"] for m in apis.wechat_messages} == {"TOKEN2"}


def test_an_unreachable_api_is_a_clear_error():
    api = WeChatAPI(f"http://127.0.0.1:{free_port()}", "wxapp", "secret", timeout=2)
    with pytest.raises(WeChatAPIError, match="/cgi-bin/token"):
        asyncio.run(api.send_text("openid-1", "hi"))


def test_a_refused_message_is_an_error_with_its_errcode(apis):
    api = WeChatAPI(apis.url + "/no-such-prefix", "wxapp", "secret")
    with pytest.raises(WeChatAPIError, match="access token refused: errcode 404"):
        asyncio.run(api.send_text("openid-1", "hi"))
