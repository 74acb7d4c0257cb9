"""The bot's knowledge base: FAQ pairs and short documents in YAML, and hybrid
retrieval over them (BM25 words + GPT embeddings)."""

from rasa_gpt_components.knowledge.base import KnowledgeBase, KnowledgeBaseError, Passage

__all__ = ["KnowledgeBase", "KnowledgeBaseError", "Passage"]
