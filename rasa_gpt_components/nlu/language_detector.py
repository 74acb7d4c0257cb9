"""LanguageDetector: the language of a message ("zh" or "en") as an entity
when it differs from the conversation's ``language`` slot, so that the slot
follows the customer without a custom action and responses pick their
variation by it (one bot, one model, two languages).

``config.yml``::

    pipeline:
      - name: JiebaTokenizer
      - name: rasa_gpt_components.LanguageDetector
      # ... entity extractors, intent classifiers

``domain.yml``::

    entities:
      - language:
          influence_conversation: false

    slots:
      language:
        type: categorical
        values: [zh, en]
        initial_value: zh
        influence_conversation: false
        mappings:
          - type: from_entity
            entity: language

    responses:
      utter_greet:
        - condition: [{type: slot, name: language, value: en}]
          text: "Hello! How can I help?"
        - text: "您好！请问有什么可以帮您？"

The language is ``rasa_gpt_components.text.message_language`` of the cleaned
text (Chinese when Chinese characters are at least a fifth of the letters, as
the generative answers decide it). There is no entity when the message has no
words (a bare order number, digits, "?"), when its language is the slot's
already, or when the tracker Rasa hands the NLU has no such slot: a message
parsed outside a conversation (``rasa test``'s end-to-end evaluation, the HTTP
API's ``/model/parse``, ``rasa shell nlu``). So test stories need no language
annotations, and the tracker gets a ``SlotSet`` only when the language changes.
It loads no model.
"""

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.trackers import AnySlotDict, DialogueStateTracker
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_gpt_components.text import LANGUAGE_SLOT, clean_text, message_language


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(GraphComponent):
    """Adds the entity ``language`` ("zh" or "en") to a message in a language other than the slot's."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``entity``: the name of the entity to add; ``slot``: the slot it fills."""
        return {"entity": "language", "slot": LANGUAGE_SLOT}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.entity = config["entity"]
        self.slot = config["slot"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LanguageDetector":
        """Nothing to train or load."""
        return cls(config)

    def process(self, messages: List[Message], tracker: DialogueStateTracker) -> List[Message]:
        """Add the language entity to each message that changes the slot's language.

        ``tracker`` is the conversation's (Rasa hands it to NLU components that ask).
        """
        if isinstance(tracker.slots, AnySlotDict) or self.slot not in tracker.slots:
            return messages  # outside a conversation: a tracker without the domain's slots
        for message in messages:
            text = message.get(TEXT) or ""
            language = message_language(clean_text(text))
            if language is not None and language != tracker.get_slot(self.slot):
                entity = {
                    ENTITY_ATTRIBUTE_TYPE: self.entity,
                    ENTITY_ATTRIBUTE_VALUE: language,
                    ENTITY_ATTRIBUTE_START: 0,
                    ENTITY_ATTRIBUTE_END: len(text),
                    EXTRACTOR: self.__class__.__name__,
                }
                message.set(ENTITIES, message.get(ENTITIES, []) + [entity], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples keep their annotated entities only."""
        return training_data
