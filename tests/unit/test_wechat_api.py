"""The message API clients (wechatpy's, with our base URL, timeout and error
handling) against a stand-in server on 127.0.0.1: the token is fetched once and
reused, refreshed once when reported expired, and failures are reported as
WeChatAPIError rather than raised as whatever the HTTP stack threw."""

import asyncio
import logging

import pytest

from rasa_gpt_components.serving.channels.wechat_api import OfficialAccountClient, WeChatAPIError, WeComClient
from tests.fixtures.fake_apis import FakeAPIs
from tests.integration.conftest import free_port


@pytest.fixture
def apis():
    server = FakeAPIs()
    yield server
    server.close()


def test_the_token_is_refreshed_once_when_expired_then_reused(apis):
    api = OfficialAccountClient(apis.url, "wxapp", "secret")

    async def conversation():
        await api.send("openid-1", "您好")
        await api.send("openid-1", "再见")

    asyncio.run(conversation())
    assert [r["path"] for r in apis.token_requests] == ["/cgi-bin/token", "/cgi-bin/token"]
    assert apis.token_requests[0]["appid"] == "wxapp" and apis.token_requests[0]["secret"] == "secret"
    assert apis.wechat_texts("openid-1") == ["您好", "再见"]  # UTF-8 JSON, not \\u escapes
    assert {m["access_token"] for m in apis.wechat_messages} == {"TOKEN2"}
    assert {m["path"] for m in apis.wechat_messages} == {"/cgi-bin/message/custom/send"}


def test_a_wecom_application_sends_with_its_agent_id(apis):
    api = WeComClient(apis.url, "wwcorp", "corp-secret", "1000002")
    asyncio.run(api.send("zhangsan", "您好"))
    assert apis.token_requests[-1] == {"path": "/cgi-bin/gettoken", "corpid": "wwcorp", "corpsecret": "corp-secret"}
    sent = apis.wechat_messages[-1]
    assert sent["path"] == "/cgi-bin/message/send" and sent["access_token"] == "TOKEN2"
    assert (sent["body"]["touser"], sent["body"]["agentid"], sent["body"]["text"]) == (
        "zhangsan", 1000002, {"content": "您好"})


def test_a_token_refused_after_its_refresh_is_an_error_not_a_loop(apis):
    api = OfficialAccountClient(apis.url, "wxloop", "secret")
    other = OfficialAccountClient(apis.url, "wxloop", "secret", session=api.session)  # another instance

    def supersede():  # each time a message is on its way, the other instance fetches a new token
        other.fetch_access_token()
        apis.before_message = supersede

    apis.before_message = supersede
    with pytest.raises(WeChatAPIError, match="refused too"):
        asyncio.run(api.send("openid-1", "hi"))
    # TOKEN1 refused; TOKEN2 (the other's) taken from the storage and refused; no third try
    assert apis.wechat_messages == [] and len(apis.token_requests) == 3


def test_an_unreachable_api_is_a_clear_error():
    api = OfficialAccountClient(f"http://127.0.0.1:{free_port()}", "wxapp", "secret", timeout=2)
    with pytest.raises(WeChatAPIError, match="/cgi-bin/token") as failed:
        asyncio.run(api.send("openid-1", "hi"))
    assert "secret" not in str(failed.value)  # the token URL, with the secret, is not in the error


def test_a_refused_message_is_an_error_with_its_errcode(apis):
    api = OfficialAccountClient(apis.url + "/no-such-prefix", "wxapp", "secret")
    with pytest.raises(WeChatAPIError, match="access token refused: errcode 404"):
        asyncio.run(api.send("openid-1", "hi"))


def test_neither_the_secret_nor_the_token_is_logged_even_at_debug_level(apis, caplog):
    caplog.set_level(logging.DEBUG)
    api = OfficialAccountClient(apis.url, "wxapp", "s3cret-of-the-app")
    asyncio.run(api.send("openid-1", "您好"))
    assert "/cgi-bin/token" in caplog.text  # urllib3's request lines are there, redacted
    assert "s3cret-of-the-app" not in caplog.text and "TOKEN2" not in caplog.text
