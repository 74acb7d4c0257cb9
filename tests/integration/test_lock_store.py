"""AtomicRedisLockStore against a real Redis on 127.0.0.1: tickets taken by many
processes' worth of clients at the same moment are all different (Rasa's own
RedisLockStore hands out the same ticket twice under the same load), and the
lock is gone once every ticket is returned."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from rasa_gpt_components.serving.lock_store import AtomicRedisLockStore
from tests.integration import services

pytestmark = pytest.mark.integration


def test_tickets_taken_at_once_are_all_different_and_the_lock_goes_away(tmp_path):
    with services.redis(tmp_path) as port:
        config = EndpointConfig(url="127.0.0.1", type="rasa_gpt_components.serving.AtomicRedisLockStore",
                                port=port, db=1)
        assert isinstance(LockStore.create(config), AtomicRedisLockStore)  # as Rasa builds it from endpoints.yml
        stores = [AtomicRedisLockStore(host="127.0.0.1", port=port, db=1) for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            tickets = list(pool.map(lambda n: stores[n % 8].issue_ticket("conversation"), range(200)))
        assert sorted(tickets) == list(range(200))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: stores[n % 8].cleanup("conversation", tickets[n]), range(200)))
        assert stores[0].get_lock("conversation") is None
