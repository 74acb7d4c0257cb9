"""Where answers are generated: the local model (the foundation's loader, the
same instance the intent classifier uses) or any OpenAI-compatible server
(vLLM, llama.cpp's server, Ollama).

Backends are synchronous and run in a worker thread (the NLG's executor);
every call gets a deadline (``time.monotonic()`` seconds) and returns by it,
with whatever it had, marked ``stopped="deadline"``.
"""

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from rasa_gpt_components.generation.prompts import Prompt, render

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    """What a backend produced."""

    text: str
    tokens: int
    seconds: float
    stopped: str  # "end" (the model finished), "max_tokens", "deadline", "error" or "not_generated"
    error: str = ""


class BackendError(RuntimeError):
    """A backend cannot be built (bad settings); generation errors are returned, not raised."""


class LocalBackend:
    """Greedy decoding with transformers on the shared local model."""

    def __init__(self, model: Optional[str] = None, clock: Callable[[], float] = time.monotonic) -> None:
        from rasa_gpt_components.models import load_model
        from rasa_gpt_components.models.encoder import bfloat16_is_fast

        self.loaded = load_model(model)
        self.bfloat16 = bfloat16_is_fast()  # autocast where the CPU does bfloat16 natively
        self.clock = clock  # what deadlines are measured with
        self.lookup_tokens = 8

    def generate(self, prompt: Prompt, max_new_tokens: int, deadline: float) -> Generation:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        clock = self.clock

        class _Deadline(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), clock() >= deadline, dtype=torch.bool)

        started = clock()
        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        inputs = tokenizer(render(prompt, tokenizer), return_tensors="pt")
        prompt_tokens = inputs["input_ids"].shape[1]
        config = model.config
        window = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048)
        max_new_tokens = min(max_new_tokens, window - prompt_tokens)
        if max_new_tokens < 1:
            logger.warning("Prompt of %d tokens does not fit the model's %d positions.", prompt_tokens, window)
            return Generation("", 0, clock() - started, "error", "prompt_too_long")
        try:
            autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16)
            with torch.inference_mode(), autocast:
                output = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    # copies of passage text are drafted from the prompt and checked in one
                    # pass: the same greedy answer, faster (no repetition penalty: it would
                    # also penalise the passage's words; the guardrails cut repeats)
                    prompt_lookup_num_tokens=self.lookup_tokens if tokenizer.eos_token_id is not None else None,
                    pad_token_id=tokenizer.pad_token_id,
                    stopping_criteria=StoppingCriteriaList([_Deadline()]),
                )
        except Exception as error:  # a broken model must not break the conversation
            logger.warning("Local generation failed: %s", type(error).__name__)
            return Generation("", 0, clock() - started, "error", type(error).__name__)
        new = output[0, prompt_tokens:]
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        finished = len(new) > 0 and int(new[-1]) == tokenizer.eos_token_id
        stopped = "end" if finished else ("deadline" if clock() >= deadline else "max_tokens")
        if stopped == "max_tokens" and len(new) < max_new_tokens:
            stopped = "end"
        return Generation(text, int(len(new)), clock() - started, stopped)


class OpenAIBackend:
    """A chat-completions endpoint: ``{base_url}/chat/completions``."""

    def __init__(self, base_url: str, model: str = "default", api_key: str = "", temperature: float = 0.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"base_url must start with http:// or https://, got '{base_url}'.")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.temperature = temperature

    def generate(self, prompt: Prompt, max_new_tokens: int, deadline: float) -> Generation:
        started = time.monotonic()
        body: Dict[str, Any] = {
            "model": self.model,
            "messages": prompt.messages(),
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode("utf-8"), headers)
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            return Generation("", 0, 0.0, "deadline")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = json.loads(response.read(1_000_000))
            choice = data["choices"][0]
            text = str(choice["message"]["content"] or "").strip()
            tokens = int((data.get("usage") or {}).get("completion_tokens") or 0)
            stopped = "max_tokens" if choice.get("finish_reason") == "length" else "end"
            return Generation(text, tokens, time.monotonic() - started, stopped)
        except (TimeoutError, OSError) as error:
            late = time.monotonic() >= deadline or "timed out" in str(error)
            stopped = "deadline" if late else "error"
            logger.warning("OpenAI-compatible backend at %s: %s", self.url, type(error).__name__)
            return Generation("", 0, time.monotonic() - started, stopped, type(error).__name__)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            logger.warning("OpenAI-compatible backend at %s answered in an unexpected shape.", self.url)
            return Generation("", 0, time.monotonic() - started, "error", type(error).__name__)


def build_backend(
    backend: str, model: Optional[str], base_url: Optional[str], server_model: str, api_key: str
) -> Any:
    """The backend the NLG's settings name: ``local`` (default) or ``openai``."""
    if backend == "openai":
        if not base_url:
            raise BackendError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8080/v1).")
        return OpenAIBackend(base_url, server_model, api_key)
    return LocalBackend(model)
