"""Splitting long answers to WeChat's limit and buttons as numbered text."""

import pytest

from rasa_gpt_components.serving.channels.formatting import buttons_as_text, chosen_button, join_replies, split_message
from rasa_gpt_components.serving.channels.seen import SeenKeys


def test_short_text_is_one_part():
    assert split_message("您好", 2048) == ["您好"]


@pytest.mark.parametrize("limit", [30, 64, 200])
def test_long_text_is_split_within_the_byte_limit_and_nothing_is_lost(limit):
    text = "\n\n".join(["第一段。这是一个很长的句子，用来测试分段！", "Second paragraph. It has two sentences.",
                        "没有标点的一长串文字" * 8])
    parts = split_message(text, limit)
    assert len(parts) > 1
    assert all(len(part.encode("utf-8")) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_paragraphs_are_cut_at_their_boundaries_first():
    first, second = "a" * 40, "b" * 40
    assert split_message(first + "\n\n" + second, 50) == [first, second]


def test_buttons_become_numbered_lines_and_a_number_picks_one():
    buttons = [{"title": "是的", "payload": "/affirm"}, {"title": "不用了", "payload": "/deny"}]
    assert buttons_as_text("确认提交吗？", buttons) == "确认提交吗？\n1. 是的\n2. 不用了"
    assert chosen_button(" 2 ", buttons) == "/deny"
    assert chosen_button("3", buttons) is None
    assert chosen_button("2", None) is None
    assert chosen_button("是的", buttons) is None


def test_replies_are_joined_with_blank_lines():
    assert join_replies(["a ", "", " b"]) == "a\n\nb"


def test_seen_keys_forget_after_their_time_and_beyond_their_size():
    now = [0.0]
    seen = SeenKeys(ttl=10, max_keys=2, clock=lambda: now[0])
    assert seen.add("a") and not seen.add("a")
    now[0] = 11
    assert "a" not in seen and seen.add("a")
    seen.add("b"), seen.add("c")
    assert "a" not in seen and "b" in seen and "c" in seen
