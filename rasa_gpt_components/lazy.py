"""Names a package hands on without importing them until they are used, so
``import rasa_gpt_components`` stays cheap while Rasa still finds
``rasa_gpt_components.<Name>`` (it resolves names with ``getattr`` on the module)."""

import importlib
import warnings
from typing import Any, Callable, Dict, List, Tuple


def lazy_names(package: str, modules: Dict[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``modules``
    (public name -> module that defines it) is imported on first use."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> List[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(modules))

    return __getattr__, __dir__


def moved_to(old: str, new: str) -> Callable[[str], Any]:
    """``__getattr__`` for an old module path that is kept for one release:
    each name comes from ``new``, with a FutureWarning that says where."""

    def __getattr__(name: str) -> Any:
        value = getattr(importlib.import_module(new), name)
        warnings.warn(f"{old}.{name} is deprecated; use {new}.{name}.", FutureWarning, stacklevel=2)
        return value

    return __getattr__
