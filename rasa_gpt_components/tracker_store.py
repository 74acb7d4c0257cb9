"""Old path, kept for one release: ``rasa_gpt_components.tracker_store.<Name>`` in
credentials.yml or endpoints.yml still works. Write
``rasa_gpt_components.serving.<Name>`` instead (docs/architecture.md)."""

import warnings
from typing import Any

from rasa_gpt_components import serving


def __getattr__(name: str) -> Any:
    value = getattr(serving, name)
    warnings.warn(
        f"rasa_gpt_components.tracker_store.{name} is deprecated; use rasa_gpt_components.serving.{name}.",
        FutureWarning,
        stacklevel=2,
    )
    return value
