"""rasa_gpt_components: local GPT models for Rasa 3.6.

Components are imported lazily, so ``import rasa_gpt_components`` stays cheap
and Rasa can still find ``rasa_gpt_components.<Component>`` named in
``config.yml`` (Rasa resolves the name with ``getattr`` on this module).
"""

import os

from rasa_gpt_components.lazy import lazy_names

# transformers imports TensorFlow when it is installed (Rasa installs it), which
# costs seconds and memory; our models are PyTorch. A user can still set USE_TF.
os.environ.setdefault("USE_TF", "0")

__version__ = "0.1.0"

# public name -> module that defines it
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "GPTIntentClassifier": "rasa_gpt_components.nlu.gpt_intent_classifier",
        "SentimentAnalyzer": "rasa_gpt_components.nlu.sentiment",
        "LanguageDetector": "rasa_gpt_components.nlu.language_detector",
        "NegatedRequests": "rasa_gpt_components.nlu.negated_requests",
        "GenerativeFallbackPolicy": "rasa_gpt_components.policies.generative_fallback",
        "ConversationRepairPolicy": "rasa_gpt_components.policies.repair",
        "FollowUpPolicy": "rasa_gpt_components.policies.follow_up",
        "AnsweringTEDPolicy": "rasa_gpt_components.policies.answering_ted",
        "GenerativeNLG": "rasa_gpt_components.generation.nlg",
    },
)
