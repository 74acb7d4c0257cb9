"""Recommendations from what the customer says and what customers bought
(docs/recommendations.md): ``Recommender`` for a custom action."""

from rasa_gpt_components.recommend.reasons import word_details
from rasa_gpt_components.recommend.recommender import Pick, Recommendation, Recommender
from rasa_gpt_components.recommend.request import (
    Request,
    asks_about_shown,
    asks_for_others,
    request_from_dict,
    request_to_dict,
)
from rasa_gpt_components.recommend.settings import RecommenderSettings

__all__ = ["Pick", "Recommendation", "Recommender", "RecommenderSettings", "Request", "asks_about_shown",
           "asks_for_others", "request_from_dict", "request_to_dict", "word_details"]
