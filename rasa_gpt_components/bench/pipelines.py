"""The Rasa configs the intent benchmark compares, written as a user would."""

from typing import Any, Dict, List, Optional

import yaml


def tokenizer_for(language: str) -> Dict[str, Any]:
    """Rasa's default tokenizer, or JiebaTokenizer for Chinese."""
    return {"name": "JiebaTokenizer" if language == "zh" else "WhitespaceTokenizer"}


# Rasa's FallbackClassifier as `rasa init` writes it (threshold 0.3, ambiguity 0.1): both systems get the same
FALLBACK = {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1}


def fallback_classifier(ambiguity_threshold: Optional[float] = None) -> Dict[str, Any]:
    """FallbackClassifier's entry; ``ambiguity_threshold`` replaces Rasa's 0.1 when given."""
    return {**FALLBACK, **({} if ambiguity_threshold is None else {"ambiguity_threshold": float(ambiguity_threshold)})}


def diet_pipeline(language: str, epochs: int = 100, fallback: bool = True,
                  ambiguity_threshold: Optional[float] = None) -> List[Dict[str, Any]]:
    """Rasa 3.6's default pipeline (as ``rasa init`` leaves it to be filled in).

    ResponseSelector is left out: the benchmark data have no retrieval intents.
    """
    pipeline = [
        tokenizer_for(language),
        {"name": "RegexFeaturizer"},
        {"name": "LexicalSyntacticFeaturizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
        {"name": "DIETClassifier", "epochs": epochs, "constrain_similarities": True},
        {"name": "EntitySynonymMapper"},
    ]
    if fallback:
        pipeline.append(fallback_classifier(ambiguity_threshold))
    return pipeline


def gpt_pipeline(
    language: str, options: Optional[Dict[str, Any]] = None, fallback: bool = True,
    ambiguity_threshold: Optional[float] = None,
) -> List[Dict[str, Any]]:
    """The same tokenizer, GPTIntentClassifier, and the same FallbackClassifier."""
    classifier = {"name": "rasa_gpt_components.GPTIntentClassifier", **(options or {})}
    if not fallback:
        classifier.setdefault("oos_detection", False)
    pipeline = [tokenizer_for(language), classifier]
    if fallback:
        pipeline.append(fallback_classifier(ambiguity_threshold))
    return pipeline


def config_yaml(language: str, pipeline: List[Dict[str, Any]]) -> str:
    """A complete ``config.yml`` text for an NLU-only project."""
    return yaml.safe_dump(
        {
            "recipe": "default.v1",
            "assistant_id": "rasa-gpt-bench",
            "language": language,
            "pipeline": pipeline,
            "policies": [],
        },
        allow_unicode=True,
        sort_keys=False,
    )
