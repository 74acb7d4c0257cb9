"""NegatedRequests: a message that negates a request is not that request.

Intent classifiers read the words of a request and miss the negation in front
of them: "不用转人工", "别给我转人工" and "I don't need a human, where is my
parcel?" are read as a request for a human, and the bot hands off. After the
classifier, this component checks the message's intent against the requests it
is given, each with the words that name what is requested; when a clause of
the message negates one of them (``text.negates``: a negation, then at most
four characters or words, then the word), the intent is dropped from the
ranking and the message gets the next reading: the best other intent of the
ranking, renormalised, when the classifier gave it at least
``min_confidence`` (0.2: a reading it gave 5 % is no reading); otherwise
``otherwise`` (a no) with the dropped intent's confidence. A negated request
lower in the ranking is dropped from it too (no clarifying question offers
what the customer declined). "不用了，转人工吧" and "I don't want a bot, I want a human" are left
alone (the negation is in another clause, or the clause asks after all).

``config.yml``, after the intent classifier and before FallbackClassifier::

    pipeline:
      # ...
      - name: rasa_gpt_components.GPTIntentClassifier
      - name: rasa_gpt_components.NegatedRequests
        requests:
          human_handoff: [人工, 真人, 客服, human, agent, person, representative, operator, transfer]
        otherwise: deny
      - name: FallbackClassifier

The intent read first is kept in the parse data as ``negated_intent`` (name and
confidence). It loads no model; nothing to train. Limits: a lexicon, not a
model (docs/handoff.md).
"""

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_gpt_components.nlu.gpt_intent_classifier import CLAUSE_READING, MESSAGE_RANKING
from rasa_gpt_components.text import clean_text, negates

NEGATED_INTENT = "negated_intent"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class NegatedRequests(GraphComponent):
    """Gives a message that negates a request (its intent) its next reading."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``requests``: intent -> the words that name what it asks for; ``otherwise``:
        the intent when no other reading is likely (None: the best other one whatever its
        confidence); ``min_confidence``: how likely the best other reading must be."""
        return {"requests": {}, "otherwise": "deny", "min_confidence": 0.2}

    def __init__(self, config: Dict[Text, Any]) -> None:
        requests = config.get("requests") or {}
        if not isinstance(requests, dict) or not all(
            isinstance(words, list) and words and all(isinstance(w, str) and w.strip() for w in words)
            for words in requests.values()
        ):
            raise InvalidConfigException(
                "NegatedRequests: 'requests' maps each intent to a list of the words that name what it "
                "asks for, e.g. {human_handoff: [人工, human, agent]}."
            )
        minimum = config.get("min_confidence", 0.2)
        if not isinstance(minimum, (int, float)) or not 0.0 <= minimum <= 1.0:
            raise InvalidConfigException(f"NegatedRequests: 'min_confidence' must be between 0 and 1, got {minimum!r}.")
        self.requests: Dict[str, List[str]] = {str(k): [w.strip() for w in v] for k, v in requests.items()}
        self.otherwise: Optional[str] = config.get("otherwise")
        self.min_confidence = float(minimum)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "NegatedRequests":
        """Nothing to train or load."""
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        """Give each message that negates its request its next reading."""
        for message in messages:
            self._undo_negated_clause(message)
            intent = message.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            ranking = message.get(INTENT_RANKING_KEY) or []
            read = ({name} | {r.get(INTENT_NAME_KEY) for r in ranking}) & set(self.requests)
            text = clean_text(message.get(TEXT) or "") if read else ""
            negated = {request for request in read if negates(text, self.requests[request])}
            if name in negated:
                self._read_again(message, name, float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0))
            elif negated:  # lower in the ranking: no clarifying question offers it
                message.set(INTENT_RANKING_KEY, [r for r in ranking if r.get(INTENT_NAME_KEY) not in negated],
                            add_to_output=True)
        return messages

    def _undo_negated_clause(self, message: Message) -> None:
        """A request that GPTIntentClassifier read from one clause (``priority_intents``) and
        that the message negates ("不用转人工，我的包裹到哪了"): the message's own reading
        comes back, and is checked like any other below."""
        reading = message.get(CLAUSE_READING) or {}
        words = self.requests.get(reading.get(INTENT_NAME_KEY))
        if words and negates(clean_text(message.get(TEXT) or ""), words):
            ranking = [dict(r) for r in reading.get(MESSAGE_RANKING) or []]
            message.set(INTENT, dict(ranking[0]) if ranking else {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0},
                        add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    def _read_again(self, message: Message, name: str, confidence: float) -> None:
        others = [dict(r) for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != name]
        mass = sum(float(r.get(PREDICTED_CONFIDENCE_KEY) or 0.0) for r in others)
        if others and (self.otherwise is None or float(others[0][PREDICTED_CONFIDENCE_KEY] or 0.0) >= self.min_confidence):
            for reading in others:
                reading[PREDICTED_CONFIDENCE_KEY] = float(reading[PREDICTED_CONFIDENCE_KEY] or 0.0) / mass if mass else 0.0
            ranking = others
        elif self.otherwise is not None:
            ranking = [{INTENT_NAME_KEY: self.otherwise, PREDICTED_CONFIDENCE_KEY: confidence}]
            ranking += [r for r in others if r[INTENT_NAME_KEY] != self.otherwise]
        else:
            return  # nothing else to read it as
        message.set(NEGATED_INTENT, {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}, add_to_output=True)
        message.set(INTENT, dict(ranking[0]), add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples keep their annotated intents."""
        return training_data
