"""One system of the intent benchmark, in its own process (so its memory is its own).

    python -m rasa_gpt_components.bench.intent_worker PROJECT_DIR RESULT.json

``PROJECT_DIR`` holds ``config.yml``, ``nlu.yml`` and ``test.json`` (a list of
texts). The worker trains with Rasa's own training API, loads the model into a
Rasa ``Agent`` and parses the test texts one at a time, as ``rasa run`` does.
"""

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Dict, List


def run(project: Path, result_file: Path) -> Dict[str, Any]:
    """Train, then predict every test text; write timings and predictions."""
    import logging

    import rasa_gpt_components  # noqa: F401  (sets USE_TF before transformers loads)
    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog
    from rasa.model_training import train_nlu
    from tqdm import tqdm

    configure_logging_and_warnings(logging.INFO)  # as `rasa train` / `rasa run` do
    configure_structlog(logging.INFO)
    texts: List[str] = json.loads((project / "test.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    model = train_nlu(
        str(project / "config.yml"),
        str(project / "nlu.yml"),
        str(project / "models"),
        fixed_model_name="model",
    )
    train_seconds = time.perf_counter() - started
    agent = Agent.load(model)

    async def predict() -> List[Dict[str, Any]]:
        await agent.parse_message("warm up")
        out = []
        for text in tqdm(texts, desc="predicting", unit="msg"):
            tick = time.perf_counter()
            parsed = await agent.parse_message(text)
            out.append(
                {
                    "ms": 1000 * (time.perf_counter() - tick),
                    "intent": (parsed.get("intent") or {}).get("name"),
                    "confidence": float((parsed.get("intent") or {}).get("confidence") or 0.0),
                    "ranking": [
                        [entry["name"], float(entry["confidence"])]
                        for entry in parsed.get("intent_ranking", [])[:10]
                    ],
                }
            )
        return out

    predictions = asyncio.run(predict())
    result = {
        "train_seconds": train_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "predictions": predictions,
    }
    result_file.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return result


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
