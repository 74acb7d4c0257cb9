"""Two `rasa run` instances of the bot behind one PostgreSQL tracker store and one
Redis lock store (rasa_gpt_components.serving.AtomicRedisLockStore) (throwaway servers on 127.0.0.1 from Debian's packages): the same
conversations served by both at once, nothing lost, duplicated or interleaved;
an instance killed mid-conversation and restarted, the conversation resumed; a
WeChat retry reaching the other instance recognised through the channel's shared
memory in the same Redis."""

import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List
from urllib.parse import urlencode

import pytest
import yaml

from tests.fixtures.wechat_official import OFFICIAL_ACCOUNT as OA
from tests.integration import rasa_server, services
from tests.integration.rasa_server import http
from tests.fixtures.channel_requests import plain_params, text_xml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(trained_model, shop, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale-out")
    with services.postgres() as postgres, services.redis(folder) as redis_port:
        endpoints = yaml.safe_load((shop / "endpoints.yml").read_text(encoding="utf-8"))
        endpoints["tracker_store"] = {"type": "SQL", "dialect": "postgresql", "url": "127.0.0.1",
                                      "port": postgres.port, "db": "rasa", "username": "postgres",
                                      "login_db": "postgres"}
        # Rasa's own `type: redis` issues tickets non-atomically: two instances can take the
        # same one at the same moment and process one conversation's messages at once
        endpoints["lock_store"] = {"type": "rasa_gpt_components.serving.AtomicRedisLockStore",
                                   "url": "127.0.0.1", "port": redis_port, "db": 1}
        (folder / "endpoints.yml").write_text(yaml.safe_dump(endpoints), encoding="utf-8")
        # the Official Account channel too, remembering MsgIds and signatures in the same Redis
        credentials = {"rest": None, "rasa_gpt_components.serving.WeChatInput": {
            "mode": "plaintext", "shared_memory_url": f"redis://127.0.0.1:{redis_port}/2"}}
        (folder / "credentials.yml").write_text(yaml.safe_dump(credentials), encoding="utf-8")
        args = (trained_model, folder / "endpoints.yml", folder / "credentials.yml")
        env = {"WECHAT_TOKEN": OA["token"]}
        servers = [rasa_server.launch(*args, folder / f"rasa{n}.log", env, extra_args=["--enable-api"])
                   for n in (0, 1)]
        try:
            for server in servers:
                rasa_server.wait_until_up(server)
            yield {"servers": servers, "args": args, "env": env, "folder": folder}
        finally:
            for server in servers:
                rasa_server.stop(server)
        for server in servers:
            assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


def turns(events: List[Dict]) -> List[List[Dict]]:
    """The events split at each user message: [[user, ...its actions...], ...]."""
    split: List[List[Dict]] = []
    for event in events:
        if event["event"] == "user":
            split.append([event])
        elif split:
            split[-1].append(event)
    return split


PAIRS = [("你好", "are you a bot?"), ("where is order ES2611210006?", "我的订单 ES2611200002 到哪了？"),
         ("有什么推荐的吗", "How much does shipping to Hong Kong cost?"), ("谢谢", "thank you")]


def test_both_instances_serve_one_conversation_at_once_without_losing_or_interleaving(cluster):
    first, second = cluster["servers"]
    senders = [f"scale-{n}" for n in range(8)]
    replies: Dict[str, List[str]] = {sender: [] for sender in senders}
    with ThreadPoolExecutor(max_workers=2 * len(senders)) as pool:
        for one, other in PAIRS:  # each round: two messages of every conversation at the same time, one per instance
            futures = {pool.submit(first.say, sender, one): sender for sender in senders}
            futures.update({pool.submit(second.say, sender, other): sender for sender in senders})
            for future, sender in futures.items():
                replies[sender] += future.result(timeout=120)
    for sender in senders:
        events = first.tracker_events(sender)
        assert events == second.tracker_events(sender)  # one store
        conversation = turns(events)
        sent = sorted(text for pair in PAIRS for text in pair)
        assert sorted(turn[0]["text"] for turn in conversation) == sent  # none lost, none twice
        for turn in conversation:  # each message fully handled before the next one started
            actions = [e["name"] for e in turn if e["event"] == "action"]
            assert actions and actions[-1] == "action_listen", actions
            assert any(e["event"] == "bot" for e in turn), turn[0]["text"]
        bot_texts = [e["text"] for e in events if e["event"] == "bot"]
        assert sorted(bot_texts) == sorted(replies[sender])


def test_a_killed_instance_loses_nothing_and_the_conversation_resumes(cluster):
    first, second = cluster["servers"]
    sender = "scale-restart"
    assert any("Order ES2611210006: Shipped" in text for text in first.say(sender, "where is order ES2611210006?"))
    rasa_server.stop(first, kill=True)  # SIGKILL, mid-conversation
    assert any("退款的原因" in text for text in second.say(sender, "我要退款"))
    # the order number looked up on the killed instance is remembered
    assert any(re.search(r"为订单 ES2611210006 申请退款", text) for text in second.say(sender, "质量有问题，线头很多"))
    restarted = rasa_server.start(*cluster["args"], cluster["folder"] / "rasa0.log", cluster["env"],
                                  port=first.port, extra_args=["--enable-api"])
    cluster["servers"][0] = restarted
    assert any("退款申请已提交" in text for text in restarted.say(sender, "是的"))
    users = [e["text"] for e in restarted.tracker_events(sender) if e["event"] == "user"]
    assert users == ["where is order ES2611210006?", "我要退款", "质量有问题，线头很多", "是的"]


def test_a_wechat_retry_reaching_the_other_instance_is_not_answered_twice(cluster):
    """WeChat retries a message it got no answer to within 5 s, maybe to another
    instance; a captured signature replayed there with another message is refused."""
    first, second = cluster["servers"]
    user, params = "oScaleOut_" + secrets.token_hex(4), plain_params()
    question = text_xml(user, "我的订单 ES2611210006 到哪了？", secrets.randbelow(10**18)).encode("utf-8")

    def post(server, params, body):
        return http("POST", f"{server.url}/webhooks/wechat/webhook?{urlencode(params)}", body,
                    {"Content-Type": "text/xml"})

    status, answer = post(first, params, question)
    assert status == 200 and "ES2611210006" in answer, (status, answer)
    assert post(second, params, question) == (200, "success")  # the retry, on the other instance
    other = text_xml(user, "我要退款", secrets.randbelow(10**18)).encode("utf-8")
    assert post(second, params, other)[0] == 403  # the same signature on another message
    users = [e["text"] for e in second.tracker_events(user) if e["event"] == "user"]
    assert len(users) == 1 and users[0].startswith("我的订单 ES2611210006"), users  # (the channel's NFKC: "？" -> "?")
