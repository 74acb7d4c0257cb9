"""The WeChat channels' checks on WeChat's and WeCom's documented samples, with our
clock set to the sample's time (the integration tests send the same samples to a
real server, where they are refused as ten-year-old replays)."""

from types import SimpleNamespace

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from rasa_gpt_components.serving.channels.wechat import BadRequest, WeChatInput, WeComInput, signature
from tests.fixtures.wechat_official import (IMAGE_MESSAGE, OFFICIAL_ACCOUNT, SUBSCRIBE_EVENT, TEXT_MESSAGE,
                                            VOICE_MESSAGE, WECOM)

OA, WC = OFFICIAL_ACCOUNT, WECOM


def request(body: str = "", method: str = "POST", **args: str) -> SimpleNamespace:
    return SimpleNamespace(method=method, body=body.encode("utf-8"), args=args)


def official_account(mode: str = "compatible", at: str = OA["timestamp"]) -> WeChatInput:
    channel = WeChatInput(token=OA["token"], app_id=OA["app_id"], encoding_aes_key=OA["encoding_aes_key"], mode=mode)
    channel.clock = lambda: int(at)
    return channel


def wecom(at: str) -> WeComInput:
    channel = WeComInput(token=WC["token"], app_id=WC["corp_id"], encoding_aes_key=WC["encoding_aes_key"])
    channel.clock = lambda: int(at)
    return channel


def test_the_official_account_sample_is_verified_and_decrypted():
    channel = official_account()
    message, encrypted, _, _ = channel._open(request(
        OA["body"], timestamp=OA["timestamp"], nonce=OA["nonce"], msg_signature=OA["msg_signature"], encrypt_type="aes"))
    assert encrypted and message.type == "text" and message.content == "abcdteT"
    assert message.source == "oyORnuP8q7ou2gfYjqLzSIWZf0rs" and message.id == 6054768590064713728


def test_the_official_account_sample_with_one_character_changed_is_refused():
    tampered = OA["body"].replace("hyzAe4OzmOMbd6Tv", "hyzAe4OzmOMbd6Tw")
    with pytest.raises(BadRequest) as refused:
        official_account()._open(request(tampered, timestamp=OA["timestamp"], nonce=OA["nonce"],
                                          msg_signature=OA["msg_signature"], encrypt_type="aes"))
    assert refused.value.status == 403


def test_the_wecom_samples_are_verified_and_decrypted():
    verify = WC["verify"]
    echo = wecom(verify["timestamp"]).verifier.handshake(request(method="GET", **verify).args)
    assert echo == "1616140317555161061"
    sample = WC["message"]
    message, encrypted, _, _ = wecom(sample["timestamp"])._open(request(
        sample["body"], timestamp=sample["timestamp"], nonce=sample["nonce"], msg_signature=sample["msg_signature"]))
    assert encrypted and (message.type, message.content, message.source) == ("text", "hello", "mycreate")
    assert str(message.agent) == "218"


def test_the_samples_are_replays_with_a_clock_of_today():
    sample = WC["message"]
    channel = wecom("1800000000")
    with pytest.raises(BadRequest) as refused:
        channel._open(request(sample["body"], timestamp=sample["timestamp"], nonce=sample["nonce"],
                              msg_signature=sample["msg_signature"]))
    assert (refused.value.status, refused.value.reason) == (403, "stale timestamp (replay?)")


def test_safe_mode_refuses_plaintext_and_plaintext_mode_checks_the_signature():
    now = "1700000000"
    params = {"timestamp": now, "nonce": "123", "signature": signature(OA["token"], now, "123")}
    with pytest.raises(BadRequest) as refused:
        official_account("safe", now)._open(request(TEXT_MESSAGE, **params))
    assert refused.value.status == 403
    plain = WeChatInput(token=OA["token"], app_id=OA["app_id"], mode="plaintext")
    plain.clock = lambda: int(now)
    message, encrypted, _, _ = plain._open(request(TEXT_MESSAGE, **params))
    assert not encrypted and message.content == "this is a test"
    with pytest.raises(BadRequest):
        plain._open(request(TEXT_MESSAGE, **dict(params, signature="0" * 40)))


def test_a_safe_mode_reply_is_encrypted_and_signed_for_the_sender():
    channel = official_account("safe", "1700000000")
    message = channel.parse(TEXT_MESSAGE)
    reply = channel._reply(message, "您好！]]><b>注入</b>", encrypted=True).body.decode("utf-8")
    outer = xmltodict.parse(reply)["xml"]
    crypto = WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["app_id"])
    inner = xmltodict.parse(crypto.decrypt_message(reply, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]))
    assert inner["xml"]["ToUserName"] == "fromUser" and inner["xml"]["FromUserName"] == "toUser"
    assert inner["xml"]["Content"] == "您好！]] ><b>注入</b>"  # CDATA cannot be closed from inside


def test_what_the_bot_is_given_for_each_kind_of_message():
    channel = official_account()
    assert channel._user_text(channel.parse(TEXT_MESSAGE)) == ("this is a test", None)
    assert channel._user_text(channel.parse(VOICE_MESSAGE)) == ("腾讯微信团队", None)
    silent_voice = VOICE_MESSAGE.replace("<Recognition><![CDATA[腾讯微信团队]]></Recognition>", "")
    assert channel._user_text(channel.parse(silent_voice))[1] == channel.options["voice_unrecognised_message"]
    assert channel._user_text(channel.parse(IMAGE_MESSAGE))[1] == channel.options["text_only_message"]
    assert channel._user_text(channel.parse(SUBSCRIBE_EVENT)) == (None, channel.options["welcome"])
    greeting = WeChatInput(token="t", app_id="a", welcome="/greet")
    assert greeting._user_text(greeting.parse(SUBSCRIBE_EVENT)) == ("/greet", None)
    unsubscribe = SUBSCRIBE_EVENT.replace("[subscribe]", "[unsubscribe]")
    assert channel._user_text(channel.parse(unsubscribe)) == (None, None)


def test_misconfiguration_is_reported_and_unknown_options_are_an_error(monkeypatch):
    for name in ("WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert "WECHAT_TOKEN" in WeChatInput.from_credentials({}).problem
    assert "ENCODING_AES_KEY" in WeChatInput.from_credentials({"token": "t", "mode": "safe"}).problem
    assert "43 characters" in WeChatInput.from_credentials({"token": "t", "app_id": "a", "encoding_aes_key": "short"}).problem
    monkeypatch.setenv("WECHAT_TOKEN", "from-env")
    assert WeChatInput.from_credentials({}).token == "from-env"
    with pytest.raises(ValueError, match="reply_budgt"):
        WeChatInput.from_credentials({"token": "t", "reply_budgt": 3})


def test_wechatpys_refusals_become_our_statuses():
    verify, sample = WC["verify"], WC["message"]
    with pytest.raises(BadRequest) as refused:
        wecom(verify["timestamp"]).verifier.handshake(dict(verify, msg_signature="0" * 40))
    assert (refused.value.status, refused.value.reason) == (403, "wrong signature")
    other_app = WeComInput(token=WC["token"], app_id="wx0000000000000000", encoding_aes_key=WC["encoding_aes_key"])
    other_app.clock = lambda: int(sample["timestamp"])
    with pytest.raises(BadRequest) as refused:
        other_app._open(request(sample["body"], **{k: sample[k] for k in ("timestamp", "nonce", "msg_signature")}))
    assert (refused.value.status, refused.value.reason) == (403, "cannot decrypt (InvalidCorpIdException)")
    # a DTD inside the encrypted message is refused like one outside
    channel = official_account("safe", "1700000000")
    crypto = WeChatCrypto(OA["token"], OA["encoding_aes_key"], OA["app_id"])
    sealed = xmltodict.parse(crypto.encrypt_message('<!DOCTYPE xml [<!ENTITY e "x">]>' + TEXT_MESSAGE, "7", "1700000000"))
    params = {"timestamp": "1700000000", "nonce": "7", "encrypt_type": "aes",
              "msg_signature": sealed["xml"]["MsgSignature"]}
    body = f"<xml><Encrypt><![CDATA[{sealed['xml']['Encrypt']}]]></Encrypt></xml>"
    with pytest.raises(BadRequest) as refused:
        channel._open(request(body, **params))
    assert refused.value.status == 400
