"""AnsweringTEDPolicy: a real TED, trained on stories where the bot once stays silent."""

import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_gpt_components.policies.answering_ted import AnsweringTEDPolicy, awaits_answer

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, affirm]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_generative_fallback: [{text: "Sorry, I didn't get that."}]
  utter_handoff: [{text: "Connecting you with an agent."}]
"""
)


def turn(intent: str, *actions: str) -> list:
    return [ActionExecuted("action_listen"), UserUttered("text", intent={"name": intent, "confidence": 1.0}),
            *[ActionExecuted(action) for action in actions]]


def action(prediction) -> tuple:
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index], prediction.max_confidence


@pytest.fixture(scope="module")
def ted(tmp_path_factory) -> AnsweringTEDPolicy:
    """Trained where "affirm" at a conversation's start is followed by silence."""
    stories = [turn("greet", "utter_greet", "action_listen"), turn("affirm", "action_listen")]
    trackers = [TrackerWithCachedStates.from_events(f"story{i}", events, domain=DOMAIN)
                for i, events in enumerate(stories)]
    config = {**AnsweringTEDPolicy.get_default_config(), "epochs": 200, "random_seed": 1}
    policy = AnsweringTEDPolicy.create(config, LocalModelStorage(tmp_path_factory.mktemp("ted")),
                                       Resource("ted"), ExecutionContext(GraphSchema({}), "test"))
    policy.train(trackers, DOMAIN)
    return policy


def test_abstains_where_ted_would_answer_a_message_with_silence(ted):
    tracker = DialogueStateTracker.from_events("u", turn("affirm"))
    assert action(TEDPolicy.predict_action_probabilities(ted, tracker, DOMAIN))[0] == "action_listen"
    assert ted.predict_action_probabilities(tracker, DOMAIN).max_confidence == 0.0


def test_keeps_every_other_prediction(ted):
    greeted = DialogueStateTracker.from_events("u", turn("greet"))
    assert action(ted.predict_action_probabilities(greeted, DOMAIN))[0] == "utter_greet"
    answered = DialogueStateTracker.from_events("u", turn("greet", "utter_greet"))
    assert action(ted.predict_action_probabilities(answered, DOMAIN))[0] == "action_listen"


def test_the_fallback_answers_instead_in_rasas_ensemble(ted, policy):
    tracker = DialogueStateTracker.from_events("u", turn("affirm"))
    fallback = policy()
    predictions = [p.predict_action_probabilities(tracker, DOMAIN) for p in (ted, fallback)]
    ensemble = DefaultPolicyPredictionEnsemble()
    assert action(ensemble.combine_predictions(predictions, tracker, DOMAIN)) == ("utter_generative_fallback", 0.3)
    plain = [TEDPolicy.predict_action_probabilities(ted, tracker, DOMAIN), predictions[1]]
    assert action(ensemble.combine_predictions(plain, tracker, DOMAIN))[0] == "action_listen"


def test_a_message_awaits_an_answer_until_an_action_runs():
    assert awaits_answer(DialogueStateTracker.from_events("u", turn("greet")))
    assert not awaits_answer(DialogueStateTracker.from_events("u", turn("greet", "utter_greet")))
    assert not awaits_answer(DialogueStateTracker.from_events("u", [ActionExecuted("action_listen")]))
