"""The recommender with its real sentence encoder (multilingual-e5-small) over
the reference shop's database: the labelled requests keep every hard
constraint, and the issue's gift request is answered as a shop assistant would."""

import re
import sys
from pathlib import Path

import pytest
import yaml

from rasa_gpt_components.recommend import Recommender

BOT = Path(__file__).resolve().parents[2] / "bot"
sys.path.insert(0, str(BOT))
from shop import db  # noqa: E402

pytestmark = pytest.mark.integration
REQUESTS = yaml.safe_load((BOT / "benchmark" / "recommend_requests.yml").read_text(encoding="utf-8"))["requests"]


@pytest.fixture(scope="module")
def recommender(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    db.init_db(url)
    config = yaml.safe_load((BOT / "recommend.yml").read_text(encoding="utf-8"))
    yield Recommender.from_config({**config, "database_url": url})
    db.dispose_engines()


def test_the_gift_for_father_with_a_budget(recommender):
    labelled = next(r for r in REQUESTS if r["text"] == "有什么适合送给爸爸的礼物推荐吗？预算500左右")
    result = recommender.recommend(labelled["text"])
    assert result.basis == "request" and len(result.picks) == 3
    assert {p.item.id for p in result.picks} & set(labelled["acceptable"])
    for pick in result.picks:
        assert 300 <= pick.item.price <= 600 and pick.item.stock > 0
        assert pick.reason.endswith("接近您的预算") and f"¥{pick.item.price:,.0f}" in pick.reason


@pytest.mark.parametrize("labelled", [r for r in REQUESTS if not r.get("clarify")], ids=lambda r: r["id"])
def test_no_labelled_request_gets_an_item_over_budget_or_out_of_stock(recommender, labelled):
    history = [p for p in recommender.catalogue.purchases if p.customer == str(labelled.get("customer"))]
    result = recommender.recommend(labelled["text"], language=labelled["language"], history=history,
                                   may_ask=False)
    owned = {p.item for p in history}
    for pick in result.picks:
        assert pick.item.stock > 0 and not (pick.item.durable and pick.item.id in owned)
        assert pick.item.price <= labelled.get("max_price", float("inf"))
        # the only amount in the reason is the item's price
        assert [float(n.replace(",", "")) for n in re.findall(r"¥([\d,]+)", pick.reason)] == [pick.item.price]


@pytest.mark.parametrize("labelled", [r for r in REQUESTS if r.get("clarify")], ids=lambda r: r["id"])
def test_vague_requests_get_a_question(recommender, labelled):
    assert recommender.recommend(labelled["text"], language=labelled["language"]).basis == "clarify"
