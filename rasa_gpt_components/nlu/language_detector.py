"""LanguageDetector: tags each message with its language as an entity, so a
``language`` slot can follow the customer and responses can pick their
variation by it (one bot, one model, Chinese and English).

``config.yml``::

    pipeline:
      - name: JiebaTokenizer
      - name: rasa_gpt_components.LanguageDetector

``domain.yml``::

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

Detection is ``rasa_gpt_components.text.message_language`` (Chinese when
Chinese characters are at least a fifth of the letters), the same rule the
generative fallback answers by. A message with no words (only an order number
such as SO20261101001, digits, "?") gets no entity, so the slot keeps the
language the customer was using.
"""

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_gpt_components.text import clean_text, message_language


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(GraphComponent, EntityExtractorMixin):
    """Adds a ``language`` entity ("zh" or "en") to every message with letters."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``entity``: the entity name to set (default ``language``)."""
        return {"entity": "language"}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.entity = config["entity"]

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

    def process(self, messages: List[Message]) -> List[Message]:
        """Tag each message."""
        for message in messages:
            language = message_language(clean_text(message.get(TEXT) or ""))
            if language is None:
                continue
            entity = {
                "entity": self.entity,
                "value": language,
                "start": 0,
                "end": len(message.get(TEXT) or ""),
                "extractor": self.__class__.__name__,
            }
            message.set(ENTITIES, message.get(ENTITIES, []) + [entity], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training messages need no language entity."""
        return training_data
