"""GenerativeFallbackPolicy's decisions on real Rasa trackers and domains."""

import pytest
from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, UserUttered
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.policies.generative_fallback import consecutive_fallbacks
from tests.fixtures.conversations import POLICY_DOMAIN as DOMAIN
from tests.fixtures.conversations import policy_tracker as tracker
from tests.fixtures.conversations import user


def predicted(policy, events) -> tuple:
    prediction = policy.predict_action_probabilities(tracker(*events), DOMAIN)
    index = prediction.max_confidence_index
    return DOMAIN.action_names_or_texts[index], prediction.max_confidence, (prediction.action_metadata or {}).get("reason")


def test_unsure_nlu_gets_the_fallback_for_sure(policy):
    p = policy()
    assert predicted(p, [user("greet", 0.1)])[:2] == ("utter_generative_fallback", 1.0)
    action, confidence, reason = predicted(p, [user("nlu_fallback", 0.9)])
    assert (action, confidence) == ("utter_generative_fallback", 1.0) and "nlu_fallback" in reason


def test_confident_nlu_gets_the_fallback_only_at_core_threshold(policy):
    action, confidence, reason = predicted(policy(core_threshold=0.4), [user("greet", 0.95)])
    assert (action, confidence) == ("utter_generative_fallback", 0.4) and "core_threshold" in reason
    assert policy().priority > RULE_POLICY_PRIORITY  # unsure NLU overrides rules


def test_listens_after_its_own_actions_and_abstains_mid_turn(policy):
    p = policy()
    after = [user("greet", 0.1), ActionExecuted("utter_generative_fallback"), BotUttered("Sorry")]
    assert predicted(p, after)[:2] == ("action_listen", 1.0)
    mid_turn = [user("greet", 0.9), ActionExecuted("utter_greet")]
    assert p.predict_action_probabilities(tracker(*mid_turn), DOMAIN).max_confidence == 0.0
    assert p.predict_action_probabilities(tracker(), DOMAIN).max_confidence == 0.0


def test_hands_off_after_too_many_fallbacks_in_a_row(policy):
    fallback_turn = lambda: user("greet", 0.1) + [ActionExecuted("utter_generative_fallback")]  # noqa: E731
    two = fallback_turn() + fallback_turn()
    assert consecutive_fallbacks(tracker(*two, *user("greet", 0.1)), "utter_generative_fallback") == 2
    action, _, reason = predicted(policy(max_consecutive_fallbacks=2), [*two, *user("greet", 0.1)])
    assert action == "utter_handoff" and "2 generative answers in a row" in reason
    broken = fallback_turn() + user("greet", 0.9) + [ActionExecuted("utter_greet")] + fallback_turn()
    assert predicted(policy(max_consecutive_fallbacks=2), [*broken, *user("greet", 0.1)])[0] == "utter_generative_fallback"


def test_training_checks_the_domain_and_config(policy):
    p = policy(handoff_action="action_human_handoff")
    with pytest.raises(RasaException, match="'action_human_handoff' \\(handoff_action\\) is not in the domain"):
        p.train([], DOMAIN)
    assert policy().train([], DOMAIN).name == "p"
    with pytest.raises(RasaException, match="nlu_threshold must be between 0 and 1"):
        policy(nlu_threshold=2)


FAILING_DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, order_status]
actions: [action_order_status, action_log_only]
responses:
  utter_generative_fallback: [{text: "Sorry, I didn't get that."}]
  utter_handoff: [{text: "Connecting you with an agent."}]
  utter_action_failed: [{text: "Sorry, something went wrong on our side."}]
"""
)
LIVE = [ActionExecuted("action_session_start"), SessionStarted()]


def predicted_in(policy, domain, events) -> tuple:
    prediction = policy.predict_action_probabilities(tracker(*events), domain)
    return domain.action_names_or_texts[prediction.max_confidence_index], prediction.max_confidence


def test_a_custom_action_that_returned_nothing_in_a_live_conversation_gets_the_apology(policy):
    p = policy(failed_action_response="utter_action_failed", silent_actions=["action_log_only"])
    failed = [*LIVE, user("order_status", 0.9), ActionExecuted("action_order_status", policy="RulePolicy")]
    assert predicted_in(p, FAILING_DOMAIN, failed) == ("utter_action_failed", 1.0)
    assert predicted_in(p, FAILING_DOMAIN, [*failed, ActionExecuted("utter_action_failed")]) == ("action_listen", 1.0)
    # it answered: not a failure
    answered = [*failed, BotUttered("Order ES2611210006: Shipped")]
    assert predicted_in(p, FAILING_DOMAIN, answered)[1] == 0.0
    # a story being evaluated (`rasa test`) has no session start, and stories leave out what actions say
    story = [user("order_status", 0.9), ActionExecuted("action_order_status", policy="RulePolicy")]
    assert predicted_in(p, FAILING_DOMAIN, story)[1] == 0.0
    # declared silent
    silent = [*LIVE, user("order_status", 0.9), ActionExecuted("action_log_only")]
    assert predicted_in(p, FAILING_DOMAIN, silent)[1] == 0.0


def test_apologising_for_failed_actions_is_off_by_default(policy):
    failed = [*LIVE, user("order_status", 0.9), ActionExecuted("action_order_status")]
    assert predicted_in(policy(), FAILING_DOMAIN, failed)[1] == 0.0


def declined(action="utter_generative_fallback"):
    """A reply that said "I don't know ... shall I get a human?" (its metadata as Rasa stores it)."""
    return [ActionExecuted(action), BotUttered("Sorry, I don't know. A human?",
                                                metadata={"metadata": {"generative": {"outcome": "declined"}}})]


def test_a_yes_to_the_human_a_decline_offered_hands_off(policy):
    p = policy()
    for answered_by in ("utter_generative_fallback", "utter_greet"):  # whichever response declined
        action, confidence, reason = predicted(p, [*user("greet", 0.9), *declined(answered_by), *user("affirm", 0.95)])
        assert (action, confidence) == ("utter_handoff", 1.0) and "declined" in reason
    answered = [ActionExecuted("utter_generative_fallback"),
                BotUttered("It takes 3 days.", metadata={"metadata": {"generative": {"outcome": "passage"}}})]
    assert predicted(p, [*user("greet", 0.9), *answered, *user("affirm", 0.95)])[0] != "utter_handoff"
    assert predicted(policy(accept_intents=[]), [*user("greet", 0.9), *declined(), *user("affirm", 0.95)])[0] \
        != "utter_handoff"
    in_form = [*user("greet", 0.9), *declined(), ActiveLoop("refund_form"), *user("affirm", 0.95)]
    assert predicted(p, in_form)[0] != "utter_handoff"  # the yes answers the form's own question


def test_a_yes_that_asks_for_an_offered_human_hands_off_whatever_the_intent(policy):
    """"好的，麻烦了" after the reply to a complaint (holdout sets 1, 3 and 12) was read as thanks,
    "要，帮我转" (the development set) and "转吧" (holdout 14) as nothing sure."""
    p = policy(offer_actions=["utter_greet"])  # any response of the domain that offers a human
    offered = [*user("greet", 0.9), ActionExecuted("utter_greet"), BotUttered("Shall I get a human?")]
    for intent, text in (("thank", "好的，麻烦了"), ("thank", "好 麻烦你了"), ("nlu_fallback", "要，帮我转"),
                         ("nlu_fallback", "转吧"), ("nlu_fallback", "go ahead"), ("affirm", "ok please"),
                         ("affirm", "yes")):
        assert predicted(p, [*offered, *user(intent, 0.9, text)])[:2] == ("utter_handoff", 1.0)
    for intent, text in (("thank", "好的谢谢"), ("thank", "谢谢"), ("deny", "不用了，麻烦了"),
                         ("faq", "好的，那运费谁出？"), ("nlu_fallback", "好的，帮我查下订单"),
                         ("nlu_fallback", "转什么转"), ("nlu_fallback", "请问运费多少")):
        assert predicted(p, [*offered, *user(intent, 0.9, text)])[0] != "utter_handoff"
    assert predicted(policy(), [*offered, *user("affirm", 0.9, "yes")])[0] != "utter_handoff"  # not an offer
    assert predicted(p, [*user("greet", 0.9), *declined(), *user("thank", 0.9, "好的，麻烦了")])[0] == "utter_handoff"


def test_a_yes_to_a_reply_the_domain_marks_as_offering_a_person_hands_off(policy):
    """``metadata: {offers_handoff: true}`` on a response declares the offer once, in the domain."""
    marked = Domain.from_yaml(DOMAIN.as_yaml().replace("utter_greet:\n  - text: hi",
                                                       "utter_greet:\n  - text: hi\n    metadata: {offers_handoff: true}"))
    assert marked.responses["utter_greet"][0]["metadata"] == {"offers_handoff": True}
    offered = [*user("greet", 0.9), ActionExecuted("utter_greet"), BotUttered("Shall I get a human?")]
    events = tracker(*offered, *user("thank", 0.9, "好的，麻烦了"))
    prediction = policy().predict_action_probabilities(events, marked)
    assert marked.action_names_or_texts[prediction.max_confidence_index] == "utter_handoff"
    assert predicted(policy(), [*offered, *user("thank", 0.9, "好的，麻烦了")])[0] != "utter_handoff"  # not marked


def test_a_yes_or_no_with_nothing_pending_gets_the_acknowledgement_not_a_search(policy):
    p = policy(acknowledgement_response="utter_greet")  # any response of the domain
    assert p.train([], DOMAIN).name == "p"
    assert predicted(p, [*user("affirm", 0.95, "ok")])[:2] == ("utter_greet", 0.3)  # rules and forms still win
    assert predicted(p, [*user("deny", 0.95, "不用了")])[:2] == ("utter_greet", 0.3)
    assert predicted(p, [*user("affirm", 0.95, "ok"), ActionExecuted("utter_greet")])[0] == "action_listen"
    assert predicted(p, [*user("affirm", 0.1, "ok")])[0] == "utter_generative_fallback"  # the NLU is not sure
    assert predicted(p, [*user("order_status", 0.95, "ok")])[0] == "utter_generative_fallback"
    assert predicted(p, [ActiveLoop("refund_form"), *user("deny", 0.95, "no")])[0] == "utter_generative_fallback"
    assert predicted(policy(), [*user("affirm", 0.95, "ok")])[0] == "utter_generative_fallback"  # off by default
    # a vague opener the NLU read as a yes says more than yes: the fallback asks again
    for vague in ("so about that", "就是那个嘛，你懂的"):
        assert predicted(p, [*user("affirm", 0.95, vague)])[0] == "utter_generative_fallback"
    with pytest.raises(RasaException, match="'utter_ok' \\(acknowledgement_response\\) is not in the domain"):
        policy(acknowledgement_response="utter_ok").train([], DOMAIN)


def test_a_no_that_says_more_to_an_offered_human_gets_the_acknowledgement(policy):
    """"不用转了 就是吐槽一下" to the reply to a complaint (holdout 16), read as stop: the fallback
    searched the knowledge base with it. A no first, no question, right after an offer: acknowledged."""
    p = policy(acknowledgement_response="utter_greet", offer_actions=["utter_greet"],
               acknowledgement_intents=["affirm", "deny", "stop"])
    offered = [*user("greet", 0.9), ActionExecuted("utter_greet"), BotUttered("Shall I get a human?")]
    for intent, text in (("stop", "不用转了 就是吐槽一下"), ("deny", "no thanks, just wanted to vent"),
                         ("deny", "不需要，谢谢")):
        assert predicted(p, [*offered, *user(intent, 0.9, text)])[:2] == ("utter_greet", 0.3)
        assert predicted(p, [*user(intent, 0.9, text)])[0] == (
            "utter_greet" if text == "不需要，谢谢" else "utter_generative_fallback")  # no offer: only a plain no
    for intent, text in (("deny", "no, but how long does delivery take?"), ("faq", "不用，我想问下运费")):
        assert predicted(p, [*offered, *user(intent, 0.9, text)])[0] == "utter_generative_fallback"
    # no need said without a no first (holdout 29: "it's fine, no need to escalate, just letting you know")
    for intent, text in (("stop", "it's fine, no need to escalate, just letting you know"),
                         ("deny", "没事，没必要转，我就说一声")):
        assert predicted(p, [*offered, *user(intent, 0.9, text)])[:2] == ("utter_greet", 0.3)
        assert predicted(p, [*user(intent, 0.9, text)])[0] == "utter_generative_fallback"  # no offer
    for intent, text in (("stop", "it's fine, is there no need to sign for it?"), ("stop", "it's fine, just letting you know")):
        assert predicted(p, [*offered, *user(intent, 0.9, text)])[0] == "utter_generative_fallback"  # a question; no need unsaid


def test_a_no_to_an_offered_human_the_nlu_was_torn_on_is_read_by_its_best_intent(policy):
    """"不用转了，就是说一下" read as deny 0.50 / stop 0.50 (nlu_fallback, FallbackClassifier's
    ambiguity) right after an offer: the acknowledgement, as for a sure deny; not without the
    offer, not when the best reading is no yes or no, nor for a message that is no plain no."""
    p = policy(acknowledgement_response="utter_greet", offer_actions=["utter_greet"],
               acknowledgement_intents=["affirm", "deny", "stop"])
    offered = [*user("greet", 0.9), ActionExecuted("utter_greet"), BotUttered("Shall I get a human?")]

    def torn(text, first, second):
        return [ActionExecuted("action_listen"), UserUttered(text, intent={"name": "nlu_fallback", "confidence": 0.3},
                                                           parse_data={"intent_ranking": [
                                                               {"name": "nlu_fallback", "confidence": 0.3},
                                                               {"name": first, "confidence": 0.5},
                                                               {"name": second, "confidence": 0.49}]})]

    assert predicted(p, [*offered, *torn("不用转了，就是说一下", "deny", "stop")])[0] == "utter_greet"
    assert predicted(p, [*torn("不用转了，就是说一下", "deny", "stop")])[0] == "utter_generative_fallback"
    assert predicted(p, [*offered, *torn("不用转了，运费多少", "faq", "deny")])[0] == "utter_generative_fallback"
    assert predicted(p, [*offered, *torn("嗯 就是说一下", "deny", "stop")])[0] == "utter_generative_fallback"
