"""Old path, kept for one release: ``rasa_gpt_components.lock_store.<Name>`` in
credentials.yml or endpoints.yml still works. Write
``rasa_gpt_components.serving.<Name>`` instead (docs/architecture.md)."""

from rasa_gpt_components.lazy import moved_to

__getattr__ = moved_to(__name__, "rasa_gpt_components.serving")
