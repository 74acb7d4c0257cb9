"""Generative answers: prompts, guardrails, generation backends and the
pipeline that ties them to the knowledge base."""
