"""WeChat (Official Account, WeCom) and Slack through a real `rasa run` of the
reference bot, over real HTTP on 127.0.0.1: conversations in plaintext and safe
mode, the slow-answer path through the message API, Slack's signed events, and
forged, replayed, malformed and oversized requests that must write nothing.

The server's WeChat channels use the credentials of WeChat's and WeCom's
documented samples (tests/fixtures/wechat_official.py), so those very samples can
be sent to it: they are correctly signed but ten years old, i.e. replays."""

import re
import secrets
import sqlite3
import time
from typing import Dict, Tuple
from urllib.parse import urlencode

import pytest
import xmltodict
import yaml
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

from rasa_gpt_components.serving.channels.wechat import signature
from tests.fixtures.channel_requests import SLACK_SECRET, plain_params, slack_event, slack_request, text_xml
from tests.fixtures.wechat_official import OFFICIAL_ACCOUNT, SUBSCRIBE_EVENT, WECOM
from tests.integration import rasa_server
from tests.integration.conftest import BOT
from tests.integration.rasa_server import http
from tests.fixtures.fake_apis import FakeAPIs

pytestmark = pytest.mark.integration

OA, WC = OFFICIAL_ACCOUNT, WECOM
WECOM_AGENT_ID = "1000002"
ORDER_ANSWER_ZH = r"ES2611210006[^\n]*已发货"
SHIPPING_ANSWER_ZH = r"顺丰速运[^\n]*30 元"


@pytest.fixture(scope="module")
def bot_server(trained_model, shop, tmp_path_factory):
    """`rasa run` with the bot's credentials.yml (secrets from the environment; API
    base URLs pointed at the stand-ins; WeCom answers always "too slow", so that
    they take the asynchronous path, in parts of at most 120 bytes)."""
    folder = tmp_path_factory.mktemp("channels")
    apis = FakeAPIs()
    credentials = yaml.safe_load((BOT / "credentials.yml").read_text(encoding="utf-8"))
    credentials["rasa_gpt_components.serving.WeChatInput"].update(mode="compatible", api_base_url=apis.url)
    credentials["rasa_gpt_components.serving.WeComInput"].update(
        api_base_url=apis.url, reply_budget=0.001, max_message_bytes=120)
    credentials["rasa_gpt_components.serving.SlackInput"]["slack_api_url"] = apis.url + "/api/"
    (folder / "credentials.yml").write_text(yaml.safe_dump(credentials, allow_unicode=True), encoding="utf-8")
    env = dict(
        WECHAT_TOKEN=OA["token"], WECHAT_APP_ID=OA["app_id"], WECHAT_APP_SECRET="oa-secret",
        WECHAT_ENCODING_AES_KEY=OA["encoding_aes_key"],
        WECOM_TOKEN=WC["token"], WECOM_CORP_ID=WC["corp_id"], WECOM_CORP_SECRET="corp-secret",
        WECOM_AGENT_ID=WECOM_AGENT_ID, WECOM_ENCODING_AES_KEY=WC["encoding_aes_key"],
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SLACK_SECRET,
    )
    try:
        with rasa_server.running(trained_model, shop / "endpoints.yml", folder / "credentials.yml",
                                 folder / "rasa.log", env=env) as server:
            yield {"url": server.url, "apis": apis, "db": shop / "conversations.db", "log": server.log}
    finally:
        apis.close()


# --- HTTP and WeChat helpers --------------------------------------------------
def encrypt(crypto, xml: str, token: str, to: str) -> Tuple[Dict[str, str], bytes]:
    """A message as WeChat sends it in safe mode: <Encrypt> plus msg_signature."""
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    ciphertext = xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]["Encrypt"]
    params = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes",
              "msg_signature": signature(token, timestamp, nonce, ciphertext)}
    return params, f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>".encode()


def post(server, channel: str, params: Dict[str, str], body: bytes) -> Tuple[int, str]:
    return http("POST", f"{server['url']}/webhooks/{channel}/webhook?{urlencode(params)}", body,
                {"Content-Type": "text/xml"})


def reply_content(text: str, crypto=None) -> str:
    xml = xmltodict.parse(text)["xml"]
    if crypto is not None:
        assert "Content" not in xml, "a safe-mode reply must be encrypted"
        xml = xmltodict.parse(crypto.decrypt_message(text, xml["MsgSignature"], xml["TimeStamp"], xml["Nonce"]))["xml"]
    return xml["Content"]


def oa_say(server, user: str, xml: str, safe: bool) -> str:
    if safe:
        crypto = WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["app_id"])
        params, body = encrypt(crypto, xml, OA["token"], "gh_example_shop")
    else:
        crypto, params, body = None, plain_params(), xml.encode("utf-8")
    status, text = post(server, "wechat", params, body)
    assert status == 200, (status, text)
    return reply_content(text, crypto)


def user_messages(server, sender: str) -> int:
    with sqlite3.connect(server["db"]) as db:
        return db.execute("select count(*) from events where sender_id = ? and type_name = 'user'",
                          (sender,)).fetchone()[0]


def all_events(server) -> int:
    with sqlite3.connect(server["db"]) as db:
        return db.execute("select count(*) from events").fetchone()[0]


# --- WeChat Official Account ---------------------------------------------------
def test_official_account_url_verification(bot_server):
    params = dict(plain_params(), echostr="6152874961349265783")
    assert http("GET", f"{bot_server['url']}/webhooks/wechat/webhook?{urlencode(params)}") == (200, "6152874961349265783")
    params["signature"] = "0" * 40
    assert http("GET", f"{bot_server['url']}/webhooks/wechat/webhook?{urlencode(params)}")[0] == 403


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
def test_a_chinese_conversation_through_the_official_account(bot_server, safe):
    user = f"oUser_{'safe' if safe else 'plain'}_{secrets.token_hex(4)}"
    welcome = SUBSCRIBE_EVENT.replace("[FromUser]", f"[{user}]").replace("[toUser]", "[gh_example_shop]")
    assert "欢迎光临示例商城" in oa_say(bot_server, user, welcome, safe)
    msg_id = secrets.randbelow(10**18)
    question = text_xml(user, "我的订单 ES2611210006 到哪了？", msg_id)
    assert re.search(ORDER_ANSWER_ZH, oa_say(bot_server, user, question, safe))
    # off-script: the generative fallback answers from the knowledge base
    assert re.search(SHIPPING_ANSWER_ZH, oa_say(bot_server, user, text_xml(user, "寄到澳门运费多少钱？", msg_id + 1), safe))
    # voice with WeChat's recognition text is understood; a picture gets the "text only" answer
    voice = text_xml(user, "", msg_id + 2, "voice", "<MediaId><![CDATA[m1]]></MediaId><Format><![CDATA[amr]]></Format>"
                     "<Recognition><![CDATA[我的订单 ES2611200002 到哪了]]></Recognition>")
    assert "ES2611200002" in oa_say(bot_server, user, voice, safe)
    image = text_xml(user, "", msg_id + 3, "image", "<PicUrl><![CDATA[http://example.com/a.jpg]]></PicUrl>"
                     "<MediaId><![CDATA[m2]]></MediaId>")
    assert "只能处理文字消息" in oa_say(bot_server, user, image, safe)
    assert user_messages(bot_server, user) == 4  # /greet, two questions, the voice message
    # WeChat retries the order question (no answer seen within 5 s): processed once
    if safe:
        params, body = encrypt(WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["app_id"]), question,
                               OA["token"], "gh_example_shop")
    else:
        params, body = plain_params(), question.encode("utf-8")
    assert post(bot_server, "wechat", params, body) == (200, "success")
    time.sleep(1)
    assert user_messages(bot_server, user) == 4


# --- WeCom: safe mode always, the slow answer through the message API ---------
def test_wecom_url_verification_decrypts_the_echostr(bot_server):
    crypto = WeComCrypto(WC["token"], WC["encoding_aes_key"], WC["corp_id"])
    timestamp, nonce = str(int(time.time())), "1372623149"
    echostr = xmltodict.parse(crypto.encrypt_message("9876543210", nonce, timestamp))["xml"]["Encrypt"]
    params = {"msg_signature": signature(WC["token"], timestamp, nonce, echostr), "timestamp": timestamp,
              "nonce": nonce, "echostr": echostr}
    assert http("GET", f"{bot_server['url']}/webhooks/wecom/webhook?{urlencode(params)}") == (200, "9876543210")


def test_a_slow_wecom_answer_is_acknowledged_and_sent_through_the_message_api(bot_server):
    apis, user = bot_server["apis"], f"zhangsan_{secrets.token_hex(4)}"
    crypto = WeComCrypto(WC["token"], WC["encoding_aes_key"], WC["corp_id"])

    def say(text: str, msg_id: int) -> None:
        params, body = encrypt(crypto, text_xml(user, text, msg_id).replace("gh_example_shop", WC["corp_id"]),
                               WC["token"], WC["corp_id"])
        started = time.monotonic()
        assert post(bot_server, "wecom", params, body) == (200, "success")
        assert time.monotonic() - started < 5.0  # inside WeChat's 5-second window

    say("我的订单 ES2611210006 到哪了？", 1001)
    apis.wait_for(lambda: any("ES2611210006" in m["body"]["text"]["content"] for m in apis.wechat_messages
                              if m["body"]["touser"] == user))
    # another turn through the action server (I/O, so the answer cannot be ready within the
    # 0.001 s budget; a knowledge-base answer is computed without waiting on anything and
    # goes out as a passive reply)
    say("帮我查下订单ES2611200002", 1002)
    apis.wait_for(lambda: any("ES2611200002" in m["body"]["text"]["content"] for m in apis.wechat_messages
                              if m["body"]["touser"] == user))
    sent = [m for m in apis.wechat_messages if m["body"]["touser"] == user]
    assert len(sent) > 2  # the answers did not fit one message each
    assert all(m["path"] == "/cgi-bin/message/send" and m["body"]["agentid"] == int(WECOM_AGENT_ID) for m in sent)
    assert all(len(m["body"]["text"]["content"].encode("utf-8")) <= 120 for m in sent)  # split to the limit
    # the access token: fetched with the corp's secret, refreshed once when reported expired, then cached
    wecom_tokens = [t for t in apis.token_requests if t["path"] == "/cgi-bin/gettoken"]
    assert wecom_tokens[0] == {"path": "/cgi-bin/gettoken", "corpid": WC["corp_id"], "corpsecret": "corp-secret"}
    assert len(wecom_tokens) == 2 and apis.rejected_tokens == ["TOKEN1"]
    assert {m["access_token"] for m in sent} == {"TOKEN2"}
    assert user_messages(bot_server, user) == 2


# --- Slack --------------------------------------------------------------------
def slack_post(server, data: bytes, headers: Dict[str, str]) -> Tuple[int, str]:
    return http("POST", f"{server['url']}/webhooks/slack/webhook", data, headers)


def test_an_english_conversation_through_slack(bot_server):
    apis, user, channel = bot_server["apis"], "U" + secrets.token_hex(4).upper(), "D" + secrets.token_hex(4).upper()
    assert slack_post(bot_server, *slack_request({"type": "url_verification", "challenge": "3eZbrw1a"})) == (200, '"3eZbrw1a"')
    conversation = [("hello", r"welcome to Example Shop"),
                    ("where is order ES2611210006?", r"Order ES2611210006: Shipped"),
                    ("How much does shipping to Hong Kong cost?", r"SF Express[^\n]*30 yuan")]
    for number, (text, expected) in enumerate(conversation):
        request = slack_request(slack_event(user, channel, text, f"Ev{channel}{number}"))
        assert slack_post(bot_server, *request)[0] == 200
        apis.wait_for(lambda: any(re.search(expected, t) for t in apis.slack_texts(channel)))
    answered = len(apis.slack_texts(channel))
    # Slack retries the last event (with its retry headers), and someone replays it as is
    data, headers = slack_request(slack_event(user, channel, conversation[-1][0], f"Ev{channel}2"))
    retry = dict(headers, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert slack_post(bot_server, data, retry)[0] == 200
    assert slack_post(bot_server, *request)[0] == 200
    time.sleep(3)
    assert len(apis.slack_texts(channel)) == answered
    assert user_messages(bot_server, user) == 3


# --- attacks and faults: refused or ignored, nothing written --------------------
def _wechat_attacks():
    """(name, channel, params, body, expected status)."""
    me = "oAttacker_" + secrets.token_hex(3)
    xml = text_xml(me, "我的订单 ES2611210006 到哪了？", 555)
    good = plain_params()
    oa = WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["app_id"])
    other_key = WeChatCrypto(OA["token"], "B" * 43, OA["app_id"])
    other_app = WeChatCrypto(OA["token"], OA["encoding_aes_key"], "wx0000000000000000")
    enc_params, enc_body = encrypt(oa, xml, OA["token"], "gh_example_shop")
    bomb = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>' + xml.replace("我的订单", "&c;"))
    xxe = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + xml.replace("我的订单", "&e;")
    official = {k: OA[k] for k in ("timestamp", "nonce", "msg_signature")}
    wecom_official = WC["message"]
    return me, [
        ("no signature", "wechat", {"timestamp": good["timestamp"], "nonce": good["nonce"]}, xml.encode(), 403),
        ("forged signature", "wechat", dict(good, signature="f" * 40), xml.encode(), 403),
        ("signed with another token", "wechat", plain_params(token="not-our-token"), xml.encode(), 403),
        ("stale timestamp (an old request replayed)", "wechat", plain_params(timestamp=int(time.time()) - 3600), xml.encode(), 403),
        ("timestamp in the future", "wechat", plain_params(timestamp=int(time.time()) + 3600), xml.encode(), 403),
        ("timestamp not a number", "wechat", dict(good, timestamp="12ab"), xml.encode(), 403),
        ("oversized body (30 KB)", "wechat", plain_params(), xml.replace("我的订单", "长" * 10_000).encode(), 413),
        ("malformed XML", "wechat", plain_params(), b"<xml><ToUserName>gh</ToUser", 400),
        ("not XML at all", "wechat", plain_params(), b'{"MsgType": "text"}', 400),
        ("XML without a message type", "wechat", plain_params(), b"<xml><FromUserName>x</FromUserName></xml>", 400),
        ("entity expansion bomb", "wechat", plain_params(), bomb.encode(), 400),
        ("external entity (XXE)", "wechat", plain_params(), xxe.encode(), 400),
        ("oversized sender id", "wechat", plain_params(), xml.replace(me, "o" * 1000).encode(), 400),
        ("encrypted, forged msg_signature", "wechat", dict(enc_params, msg_signature="0" * 40), enc_body, 403),
        ("encrypted with another AES key", "wechat", *encrypt(other_key, xml, OA["token"], "gh_example_shop"), 403),
        ("encrypted for another app id", "wechat", *encrypt(other_app, xml, OA["token"], "gh_example_shop"), 403),
        ("encrypted, ciphertext not base64", "wechat", *_signed_garbage(), 403),
        ("WeChat's documented sample, verbatim (2014: a replay)", "wechat",
         dict(official, encrypt_type="aes"), OA["body"].encode(), 403),
        ("WeCom's documented sample, verbatim (2014: a replay)", "wecom",
         {k: wecom_official[k] for k in ("msg_signature", "timestamp", "nonce")}, wecom_official["body"].encode(), 403),
        ("WeCom message in plaintext", "wecom", plain_params(token=WC["token"]), xml.encode(), 403),
    ]


def _signed_garbage() -> Tuple[Dict[str, str], bytes]:
    timestamp, nonce, garbage = str(int(time.time())), "42", "!!not*base64!!"
    params = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes",
              "msg_signature": signature(OA["token"], timestamp, nonce, garbage)}
    return params, f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>".encode()


def test_forged_replayed_and_malformed_requests_are_refused_and_write_nothing(bot_server):
    before = all_events(bot_server)
    me, attacks = _wechat_attacks()
    results = []
    for name, channel, params, body, expected in attacks:
        status, text = post(bot_server, channel, params, body)
        results.append((name, status, expected))
        assert "Traceback" not in text and "secret" not in text.lower()
    # a valid request, then the same signature (timestamp + nonce) on another message
    params, accepted = plain_params(), text_xml(me + "_ok", "你好", 777)
    status, _ = post(bot_server, "wechat", params, accepted.encode())
    results.append(("the valid request the replays copy", status, 200))
    results.append(("signature replayed with another message", post(
        bot_server, "wechat", params, text_xml(me, "我要退款", 778).encode())[0], 403))
    replayed = post(bot_server, "wechat", params, accepted.encode())
    results.append(("identical request replayed (ignored, 'success')", replayed[0], 200))
    assert replayed[1] == "success"
    # Slack: Rasa's signing-secret check, plus our size bound
    attacker, channel = "UATTACK" + secrets.token_hex(2).upper(), "DATTACK"
    event = slack_event(attacker, channel, "where is order ES2611210006?", "EvAttack1")
    data, headers = slack_request(event)
    slack = [
        ("slack: unsigned", data, {"Content-Type": "application/json"}, 400),
        ("slack: signed with another secret", *slack_request(event, secret="wrong-secret"), 400),
        ("slack: stale timestamp (10 minutes)", *slack_request(event, timestamp=int(time.time()) - 600), 400),
        ("slack: body changed after signing", data.replace(b"ES2611210006", b"ES2611200002"), headers, 400),
        ("slack: malformed JSON, signed", *slack_request({}, raw=b'{"event": {"type": "mess'), 400),
        ("slack: oversized (200 KB), signed", *slack_request(slack_event(attacker, channel, "x" * 200_000, "EvBig")), 413),
    ]
    for name, body, hdrs, expected in slack:
        status, text = slack_post(bot_server, body, hdrs)
        results.append((name, status, expected))
        assert "Traceback" not in text
    time.sleep(2)
    wrong = [result for result in results if result[1] != result[2]]
    assert not wrong, f"unexpected statuses (name, got, expected): {wrong}"
    assert user_messages(bot_server, me) == 0 and user_messages(bot_server, attacker) == 0
    assert user_messages(bot_server, me + "_ok") == 1
    assert all_events(bot_server) - before == _events_of(bot_server, me + "_ok")
    assert bot_server["apis"].slack_texts(channel) == []
    print("\n".join(f"{name}: {status}" for name, status, _ in results))


def _events_of(server, sender: str) -> int:
    with sqlite3.connect(server["db"]) as db:
        return db.execute("select count(*) from events where sender_id = ?", (sender,)).fetchone()[0]
