"""LanguageDetector: a language entity for a message in another language than
the conversation's, which fills the reference bot's ``language`` slot through
Rasa's own slot extraction."""

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest
from rasa.core.actions.action import ActionExtractSlots
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.slots import TextSlot
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

import rasa_gpt_components
from rasa_gpt_components.nlu.language_detector import LanguageDetector

BOT_DOMAIN = Path(__file__).resolve().parents[2] / "bot" / "domain.yml"
ORDER_ENTITY = {"entity": "order_number", "value": "ES2611200002", "start": 0, "end": 12}


def conversation(language: Optional[str] = None) -> DialogueStateTracker:
    """A conversation whose slot ``language`` holds ``language``."""
    slot = TextSlot("language", mappings=[{"type": "from_entity", "entity": "language"}], initial_value=language)
    return DialogueStateTracker("u", [slot])


def detect(text: str, tracker: Optional[DialogueStateTracker] = None) -> Message:
    """``text`` through the detector, with an entity of an earlier extractor."""
    message = Message({TEXT: text, ENTITIES: [dict(ORDER_ENTITY)]})
    LanguageDetector(LanguageDetector.get_default_config()).process([message], conversation() if tracker is None else tracker)
    return message


def languages(message: Message) -> List[str]:
    return [e["value"] for e in message.get(ENTITIES, []) if e["entity"] == "language"]


@pytest.mark.parametrize(
    "text, language",
    [
        ("我的订单 ES2611200002 到哪了", "zh"),
        ("where is my order ES2611200002", "en"),
        ("iPhone 15 手机壳有货吗", "zh"),
        ("ok", "en"),
        ("好的", "zh"),
        ("ｈｅｌｌｏ", "en"),  # full-width letters
        ("ES2611200002", None),  # no words: the slot keeps the language
        ("XL", None),  # a clothing size answered in a Chinese conversation is no English
        ("2xl", None),
        ("size M please", "en"),
        ("es-2611-2000-02", None),
        ("13812345678", None),
        ("?", None),
        ("", None),
    ],
)
def test_language_entity(text, language):
    message = detect(text)
    assert languages(message) == ([language] if language else [])
    assert message.get(ENTITIES)[0] == ORDER_ENTITY  # other extractors' entities kept
    if language:
        entity = message.get(ENTITIES)[-1]
        assert (entity["start"], entity["end"], entity["extractor"]) == (0, len(text), "LanguageDetector")


@pytest.mark.parametrize("slot, entity", [("zh", "en"), ("en", None), (None, "en")])
def test_an_entity_only_when_the_language_changes(slot, entity):
    assert languages(detect("hello there", conversation(slot))) == ([entity] if entity else [])


def test_no_entity_outside_a_conversation():
    """Rasa parses without a conversation (a tracker without slots) in `rasa test`'s
    end-to-end evaluation, /model/parse and `rasa shell nlu`: test stories need no
    language annotations."""
    assert languages(detect("hello there", DialogueStateTracker.from_events("u", []))) == []


def test_entity_and_slot_names_are_configurable():
    message = Message({TEXT: "hello"})
    tracker = DialogueStateTracker("u", [TextSlot("lang_slot", mappings=[], initial_value="zh")])
    LanguageDetector({"entity": "lang", "slot": "lang_slot"}).process([message], tracker)
    assert [(e["entity"], e["value"]) for e in message.get(ENTITIES)] == [("lang", "en")]


def test_an_intent_payload_keeps_the_language():
    """Rasa's last NLU step (RegexMessageHandler) replaces the entities of "/greet"
    (a button, WeChat's welcome) with the payload's: no language, the slot keeps it."""
    domain = Domain.load(str(BOT_DOMAIN))
    messages = RegexMessageHandler().process([detect("/greet")], domain)
    assert messages[0].get("intent")["name"] == "greet"
    assert languages(messages[0]) == []


def extracted_language(text: str, before: str) -> Optional[str]:
    """The language slot Rasa's action_extract_slots sets for ``text`` with the
    bot's domain, given the slot's value ``before`` (None: no SlotSet)."""
    domain = Domain.load(str(BOT_DOMAIN))
    tracker = DialogueStateTracker.from_events("u", [SlotSet("language", before)], domain.slots)
    parsed = detect(text, tracker)  # as Rasa parses: with the conversation so far
    tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
    tracker.update(UserUttered(text, {"name": "inform", "confidence": 1.0}, parsed.get(ENTITIES)))
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    events = asyncio.run(ActionExtractSlots(None).run(CollectingOutputChannel(), nlg, tracker, domain))
    values = [e.value for e in events if isinstance(e, SlotSet) and e.key == "language"]
    return values[-1] if values else None


@pytest.mark.parametrize(
    "text, before, after",
    [
        ("where is my order ES2611200002", "zh", "en"),
        ("我的订单到哪了", "en", "zh"),
        ("我想退款", "zh", None),  # unchanged: no event
        ("ES2611200002", "en", None),  # a bare order number keeps the language
    ],
)
def test_the_bot_language_slot_follows_the_messages(text, before, after):
    assert extracted_language(text, before) == after


def test_rasa_finds_it_by_the_plugin_name_and_it_loads_no_model():
    """Loading it loads neither torch nor transformers (TensorFlow is Rasa's own import)."""
    assert rasa_gpt_components.LanguageDetector is LanguageDetector
    code = (
        "import sys, rasa_gpt_components; rasa_gpt_components.LanguageDetector; "
        "print(sorted({'torch', 'transformers'} & set(m.split('.')[0] for m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
