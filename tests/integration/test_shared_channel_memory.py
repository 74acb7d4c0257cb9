"""The channels' shared memory (rasa_gpt_components.serving.channels.seen.RedisSeenKeys)
against a real Redis on 127.0.0.1: what one instance remembers, another knows;
two instances adding one key at once, one wins; entries expire; keys are
hashed; with Redis gone the memory fails open instead of failing the customer.
And the WeChat access token (wechatpy's client with our TokenStorage): fetched
by one instance, used by another."""

import asyncio
import threading
import time

import pytest
import redis

from rasa_gpt_components.serving.channels.seen import RedisSeenKeys, seen_keys
from rasa_gpt_components.serving.channels.wechat_api import OfficialAccountClient, TokenStorage
from tests.fixtures.fake_apis import FakeAPIs
from tests.integration import services
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with services.redis(tmp_path_factory.mktemp("shared-memory")) as port:
        yield f"redis://127.0.0.1:{port}/3"


def test_what_one_instance_remembers_the_other_knows(redis_url):
    first, second = (seen_keys(redis_url, "test:a:", ttl=60) for _ in range(2))  # two connections
    assert isinstance(first, RedisSeenKeys)
    key = ("1700000000", "nonce-1")
    assert first.add(key, "id:42") and not second.add(key, "id:43")
    assert second.get(key) == "id:42" and key in second
    second.put("oUser_1", [{"title": "是", "payload": "/affirm"}])
    assert first.get("oUser_1") == [{"title": "是", "payload": "/affirm"}]
    first.discard("oUser_1")
    assert second.get("oUser_1") is None and "oUser_1" not in second
    assert seen_keys(redis_url, "test:b:", ttl=60).get(key) is None  # another prefix, another memory


def test_of_many_instances_adding_one_key_at_once_exactly_one_wins(redis_url):
    memories = [seen_keys(redis_url, "test:race:", ttl=60) for _ in range(8)]
    results, start = [], threading.Barrier(len(memories))

    def add(memory):
        start.wait()
        results.append(memory.add("id:777"))

    threads = [threading.Thread(target=add, args=(memory,)) for memory in memories]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_entries_expire_and_customer_ids_are_not_stored_as_such(redis_url):
    memory = seen_keys(redis_url, "test:ttl:", ttl=1)
    assert memory.add("oCustomerOpenId123")
    client = redis.Redis.from_url(redis_url)
    stored = [k.decode() for k in client.keys("test:ttl:*")]
    assert len(stored) == 1 and "oCustomerOpenId123" not in stored[0]
    assert 0 < client.ttl(stored[0]) <= 1
    client.close()
    time.sleep(1.6)
    assert memory.get("oCustomerOpenId123") is None and memory.add("oCustomerOpenId123")


def test_without_redis_the_memory_fails_open(caplog):
    memory = seen_keys(f"redis://127.0.0.1:{free_port()}/0", "test:down:", ttl=60)
    assert memory.add("id:1") and memory.add("id:1")  # nothing seen: every message processed
    assert memory.get("id:1") is None and "id:1" not in memory
    memory.put("user", ["x"])
    memory.discard("user")
    assert "shared channel memory unavailable" in caplog.text


def test_a_url_that_is_not_redis_is_a_clear_error():
    with pytest.raises(ValueError, match="must be a Redis URL"):
        seen_keys("http://127.0.0.1:6379", "test:", ttl=60)


def shared_client(apis: FakeAPIs, redis_url: str, app_id: str, prefix: str) -> OfficialAccountClient:
    """One instance's client, its token in the Redis memory under ``prefix``."""
    return OfficialAccountClient(apis.url, app_id, "secret",
                                 session=TokenStorage(seen_keys(redis_url, prefix, ttl=7_200)))


def test_the_access_token_is_fetched_by_one_instance_and_used_by_the_other(redis_url):
    apis = FakeAPIs()  # TOKEN1 is reported expired on first use; later tokens work
    try:
        first, second = (shared_client(apis, redis_url, "wxshared", "test:token:") for _ in range(2))
        asyncio.run(first.send("openid-1", "您好"))  # fetches TOKEN1, told it expired, fetches TOKEN2
        asyncio.run(second.send("openid-2", "您好"))  # TOKEN2, without fetching
        assert len(apis.token_requests) == 2
        assert [m["access_token"] for m in apis.wechat_messages] == ["TOKEN2", "TOKEN2"]
        # without the shared memory, each instance fetches its own token and invalidates the other's
        alone = [OfficialAccountClient(apis.url, "wxalone", "secret") for _ in range(2)]
        for api in alone + alone[:1]:
            asyncio.run(api.send("openid-4", "您好"))
        assert len(apis.token_requests) == 5 and apis.superseded_tokens == ["TOKEN3"]
        # an instance whose token another one has replaced takes the new one instead of fetching
        third, fourth = (shared_client(apis, redis_url, "wxthird", "test:token2:") for _ in range(2))
        asyncio.run(third.send("openid-5", "您好"))  # fetches TOKEN6
        asyncio.run(fourth.send("openid-5", "您好"))  # TOKEN6 from the memory
        assert len(apis.token_requests) == 6
        assert fourth.fetch_access_token()["access_token"] == "TOKEN7"  # as when TOKEN6 is refused to it
        asyncio.run(third.send("openid-5", "您好"))  # TOKEN7 from the memory
        assert len(apis.token_requests) == 7
        # ... also when the new one is fetched while its message is on its way with the old one
        apis.before_message = fourth.fetch_access_token  # TOKEN8
        asyncio.run(third.send("openid-5", "您好"))  # TOKEN7 refused, TOKEN8 taken from the memory
        assert len(apis.token_requests) == 8 and apis.superseded_tokens == ["TOKEN3", "TOKEN7"]
        assert [m["access_token"] for m in apis.wechat_messages[-4:]] == ["TOKEN6", "TOKEN6", "TOKEN7", "TOKEN8"]
    finally:
        apis.close()


def test_without_redis_the_token_is_still_fetched_and_used():
    apis = FakeAPIs()
    try:
        down = f"redis://127.0.0.1:{free_port()}/0"
        api = OfficialAccountClient(apis.url, "wxdown", "secret", session=TokenStorage(seen_keys(down, "t:", 60)))
        asyncio.run(api.send("openid-6", "您好"))  # TOKEN1 expired, TOKEN2 kept in the process
        asyncio.run(api.send("openid-6", "再见"))
        assert len(apis.token_requests) == 2 and apis.wechat_texts("openid-6") == ["您好", "再见"]
    finally:
        apis.close()
