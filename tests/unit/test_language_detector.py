"""LanguageDetector: a language entity per message, none for bare codes."""

import pytest
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from rasa_gpt_components.nlu.language_detector import LanguageDetector


@pytest.mark.parametrize(
    "text, language",
    [
        ("我的订单 SO20261101001 到哪了", "zh"),
        ("where is SO20261101001?", "en"),
        ("iPhone 15 手机壳有货吗", "zh"),
        ("ok", "en"),
        ("好的", "zh"),
        ("SO20261101001", None),
        ("so-2026-1101-001", None),
        ("13812345678", None),
        ("?", None),
        ("", None),
    ],
)
def test_language_entity(text, language):
    message = Message({TEXT: text, ENTITIES: [{"entity": "order_number", "value": "x", "start": 0, "end": 1}]})
    LanguageDetector(LanguageDetector.get_default_config()).process([message])
    found = [e["value"] for e in message.get(ENTITIES) if e["entity"] == "language"]
    assert found == ([language] if language else [])
    assert message.get(ENTITIES)[0]["entity"] == "order_number"  # other extractors' entities kept
