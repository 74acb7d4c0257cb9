"""YAML as Rasa reads its data files, for every YAML file the plugin and the
reference bot read themselves (knowledge bases, the recommender's lexicon and
settings): ruamel's safe loader with YAML 1.2, so ``no``, ``on`` and ``9:30``
stay text (PyYAML's YAML 1.1 would make them a boolean and a number), and the
escaped characters of an all-ASCII file decoded as Rasa decodes them.

It does not import Rasa: the action server reads these files too, and it has
only rasa_sdk (which brings ruamel).
"""

from pathlib import Path
from typing import Any, Union


class YAMLFileError(ValueError):
    """A YAML file that could not be read or parsed; the message names the file."""


def read_yaml(text: str) -> Any:
    """The data of a YAML document."""
    from ruamel.yaml import YAML

    if text.isascii():  # as Rasa does: "\ud83d\ude00" written in an ASCII file is one emoji
        text = text.encode("utf-8").decode("raw_unicode_escape").encode("utf-16", "surrogatepass").decode("utf-16")
    parser = YAML(typ="safe")
    parser.version = (1, 2)
    return parser.load(text)


def read_yaml_file(path: Union[str, Path]) -> Any:
    """The data of the YAML file ``path`` (UTF-8); :class:`YAMLFileError` when it
    cannot be read or is not valid YAML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise YAMLFileError(f"{path} could not be read: {error}") from None
    try:
        return read_yaml(text)
    except Exception as error:  # ruamel's errors have many types
        raise YAMLFileError(f"{path}: not valid YAML ({error})") from None
