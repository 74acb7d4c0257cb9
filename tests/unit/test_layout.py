"""The package's layers (docs/architecture.md): the GPT plugin loads nothing of the
serving parts or the benchmarks, and no import runs back up a layer."""

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Tuple

PACKAGE = Path(__file__).resolve().parents[2] / "rasa_gpt_components"

# lowest first; a module may import its own layer and the layers below it
LAYERS: Dict[str, int] = {
    "text": 0,
    "lazy": 0,
    "metrics": 0,
    "yaml_files": 0,
    "models": 1,
    "knowledge": 2,
    "nlu": 2,
    "handoff": 2,
    "generation": 3,
    "policies": 3,
    "recommend": 3,
    "serving": 4,
    "bench": 5,
    "cli": 6,
}
# thin aliases of old module paths (docs/architecture.md), kept for one release
ALIASES = ("channels", "tracker_store", "lock_store")


def layer_of(module: str) -> str:
    """'rasa_gpt_components.generation.nlg' -> 'generation'."""
    return module.split(".")[1]


def imports() -> Iterator[Tuple[str, str]]:
    """(importing module, imported module) for every rasa_gpt_components import."""
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rasa_gpt_components."):
                yield module, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("rasa_gpt_components."):
                        yield module, alias.name


def test_every_module_belongs_to_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith(("_", "."))}
    assert tops - set(LAYERS) - set(ALIASES) == set()


def test_no_import_runs_back_up_a_layer():
    upward = [
        (source, target)
        for source, target in imports()
        if source.count(".") >= 1 and layer_of(source) in LAYERS
        and LAYERS[layer_of(target)] > LAYERS[layer_of(source)]
    ]
    assert upward == []


def test_loading_the_gpt_components_as_rasa_does_loads_no_serving_or_benchmark_module():
    # a fresh interpreter: what Rasa does with the names in config.yml and endpoints.yml
    script = """
import json, sys
import rasa_gpt_components
from rasa.shared.utils.common import class_from_module_path
for name in ("GPTIntentClassifier", "LanguageDetector", "GenerativeFallbackPolicy", "GenerativeNLG"):
    class_from_module_path("rasa_gpt_components." + name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("rasa_gpt_components"))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "rasa_gpt_components.generation.nlg" in loaded  # the check sees what was loaded
    assert [m for m in loaded if m.count(".") >= 1 and layer_of(m) in ("serving", "bench", "cli")] == []


def test_old_module_paths_still_name_the_serving_classes():
    import warnings

    from rasa.shared.utils.common import class_from_module_path

    from rasa_gpt_components.serving.channels.wechat import WeChatInput
    from rasa_gpt_components.serving.lock_store import AtomicRedisLockStore

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert class_from_module_path("rasa_gpt_components.channels.WeChatInput") is WeChatInput
        assert class_from_module_path("rasa_gpt_components.lock_store.AtomicRedisLockStore") is AtomicRedisLockStore
    assert any(issubclass(w.category, FutureWarning) and "serving" in str(w.message) for w in caught)
    assert class_from_module_path("rasa_gpt_components.serving.WeChatInput") is WeChatInput
