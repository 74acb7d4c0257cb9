"""Sentence features from a frozen GPT: pooled hidden states of one layer.

The encoder runs only the transformer blocks it needs (a *view* of the shared
model that stops at ``layer`` and has no language-model head, sharing the
weights, so no second copy is made) and remembers recent texts.
"""

import copy
import logging
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from rasa_gpt_components.models import LoadedModel

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "last", "mean_last")
# how the blocks compute: float32 as loaded; bfloat16 autocast (CPUs with AVX-512
# BF16: faster, nearly the same features); int8 dynamic quantisation (faster
# still, costs accuracy); the numbers: docs/intent_classifier.md
COMPUTES = ("auto", "float32", "bfloat16", "int8")


@dataclass(frozen=True)
class EncoderSettings:
    """How sentence features are computed (the classifier's and the retriever's
    options of the same names); checked once, here."""

    layer: int = 6  # 1-based; pooled hidden states of this block
    pooling: str = "mean"
    max_length: int = 64
    batch_size: int = 32
    cache_size: int = 2048
    compute: str = "auto"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got '{self.pooling}'.")
        if self.compute not in COMPUTES:
            raise ValueError(f"compute must be one of {', '.join(COMPUTES)}, got '{self.compute}'.")
        for name in ("layer", "max_length", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if int(self.cache_size) < 0:
            raise ValueError(f"cache_size must not be negative, got {self.cache_size}.")


def bfloat16_is_fast() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (AVX-512 BF16 / AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


_LAYER_LISTS = ("layers", "h", "blocks")


def transformer_blocks(model: Any) -> Tuple[str, Any]:
    """``(attribute, ModuleList)``: where ``model``'s base transformer keeps its blocks."""
    import torch

    base = model.base_model
    for attribute in _LAYER_LISTS:
        blocks = getattr(base, attribute, None)
        if isinstance(blocks, torch.nn.ModuleList):
            return attribute, blocks
    raise ValueError(
        f"Cannot find the transformer blocks of {type(base).__name__} "
        f"(looked for {', '.join(_LAYER_LISTS)})."
    )


def truncated_base_model(model: Any, num_layers: int, blocks: Optional[Any] = None) -> Any:
    """A view of ``model``'s base transformer with only its first ``num_layers``
    blocks and no LM head. Parameters are shared, not copied; the original
    model is left untouched. ``blocks`` (a ModuleList of ``num_layers`` blocks,
    e.g. adapted copies) replaces the model's own."""
    import torch

    base = model.base_model
    attribute, own = transformer_blocks(model)
    if not 1 <= num_layers <= len(own):
        raise ValueError(f"layer must be between 1 and {len(own)}, got {num_layers}.")
    if blocks is None:
        blocks = torch.nn.ModuleList(list(own)[:num_layers])
    elif len(blocks) != num_layers:
        raise ValueError(f"Expected {num_layers} blocks, got {len(blocks)}.")
    view = copy.copy(base)
    view.__dict__["_modules"] = OrderedDict(base._modules)  # do not touch the original
    view._modules[attribute] = blocks
    return view


def quantized_int8(body: Any) -> Any:
    """A copy of ``body`` whose blocks' linear layers use dynamic int8 quantisation.

    Only the (few) blocks the encoder runs are copied, as int8 (a fraction of the
    model's size; faster on CPUs with VNNI: docs/intent_classifier.md).
    """
    import torch

    quantized = copy.copy(body)
    quantized.__dict__["_modules"] = OrderedDict(body._modules)
    for name, module in body._modules.items():
        if isinstance(module, torch.nn.ModuleList):
            quantized._modules[name] = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(module),
                {torch.nn.Linear},
                dtype=torch.qint8,
            )
    return quantized


class GPTEncoder:
    """Pooled hidden states of one layer (``settings``) for a batch of texts."""

    def __init__(self, loaded: LoadedModel, settings: EncoderSettings = EncoderSettings()) -> None:
        if settings.layer > loaded.num_layers:
            raise ValueError(
                f"layer must be between 1 and {loaded.num_layers} for this model, got {settings.layer}."
            )
        self.loaded = loaded
        self.settings = settings
        self._cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._own_blocks: Optional[Any] = None
        compute = settings.compute
        if compute == "auto":
            compute = "bfloat16" if bfloat16_is_fast() else "float32"
        self.compute = compute
        self.body = self.body_with(None)

    def body_with(self, blocks: Optional[Any], quantize: bool = True) -> Any:
        """The truncated model running ``blocks`` (None: the shared model's own),
        int8-quantised when the encoder computes in int8 and ``quantize``."""
        body = truncated_base_model(self.loaded.model, self.settings.layer, blocks)
        return quantized_int8(body) if quantize and self.compute == "int8" else body

    @property
    def blocks(self) -> Any:
        """The (float) blocks the encoder runs: the shared model's first ``layer``
        blocks, or the encoder's own after :meth:`use_blocks`."""
        if self._own_blocks is not None:
            return self._own_blocks
        return transformer_blocks(self.loaded.model)[1][: self.settings.layer]

    def use_blocks(self, blocks: Any) -> None:
        """Run ``blocks`` (e.g. LoRA-adapted copies of the first ``layer`` blocks)
        instead of the shared model's; remembered features are dropped."""
        self._own_blocks = blocks
        self.body = self.body_with(blocks)
        self.clear_cache()

    @property
    def dimension(self) -> int:
        """Length of one feature vector."""
        width = self.loaded.hidden_size
        return 2 * width if self.settings.pooling == "mean_last" else width

    def encode(
        self, texts: Sequence[str], progress: bool = False, desc: str = "GPT features"
    ) -> np.ndarray:
        """Feature matrix ``[len(texts), dimension]`` (float32).

        Texts come cleaned (the components clean them where they enter); an
        empty text gets a zero vector (callers decide what an empty message means).
        """
        from tqdm import tqdm

        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        todo = []
        for index, text in enumerate(texts):
            hit = self._cache.get(text) if text else None
            if hit is not None:
                out[index] = hit
                self._cache.move_to_end(text)
            elif text:
                todo.append(index)
        # longest first: similar lengths share a batch, and memory peaks early
        todo.sort(key=lambda i: -len(texts[i]))
        with tqdm(total=len(todo), desc=desc, disable=not progress, unit="msg") as bar:
            for start in range(0, len(todo), self.settings.batch_size):
                batch = todo[start : start + self.settings.batch_size]
                features = self._forward([texts[i] for i in batch])
                for row, index in zip(features, batch):
                    out[index] = row
                    self._remember(texts[index], row)
                bar.update(len(batch))
        return out

    def _remember(self, text: str, row: np.ndarray) -> None:
        if self.settings.cache_size <= 0:
            return
        self._cache[text] = row
        if len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)

    def tokenize(self, texts: List[str]) -> Any:
        """Token ids and attention mask of cleaned ``texts``, padded, at most ``max_length``."""
        return self.loaded.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.settings.max_length,
            return_tensors="pt",
        )

    def pool(self, body: Any, batch: Any) -> Any:
        """Pooled hidden states ``[n, dimension]`` of ``body`` (a torch tensor, with
        gradients when the caller enables them)."""
        import torch

        hidden = body(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            use_cache=False,
        ).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        if self.settings.pooling == "mean":
            return mean
        last_index = batch["attention_mask"].cumsum(1).argmax(1)
        last = hidden[torch.arange(hidden.shape[0]), last_index]
        return last if self.settings.pooling == "last" else torch.cat([mean, last], dim=1)

    def _forward(self, texts: List[str]) -> np.ndarray:
        import torch

        batch = self.tokenize(texts)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.compute == "bfloat16")
        with torch.inference_mode(), autocast, _one_thread(len(texts) == 1):
            pooled = self.pool(self.body, batch)
        return pooled.numpy().astype(np.float32)

    @property
    def fingerprint(self) -> str:
        """The shared model's weights (as ``SentenceEncoder.fingerprint``)."""
        return self.loaded.fingerprint

    def warm_up(self) -> None:
        """Run one message of every length up to ``max_length`` once.

        The CPU kernels (oneDNN primitives) are built per input shape on first
        use; doing it here keeps that cost out of the first conversations'
        latency (docs/benchmarks.md).
        """
        for length in range(1, self.settings.max_length + 1):
            self._forward([" hello" * length])

    def clear_cache(self) -> None:
        """Forget remembered texts."""
        self._cache.clear()


@contextmanager
def _one_thread(enabled: bool):
    """Run torch on one thread inside the block (when ``enabled``).

    One short message is too little work to share: inside a Rasa server on 2
    cores, waking the second thread made some messages several times slower
    (docs/benchmarks.md).
    """
    import torch

    before = torch.get_num_threads()
    if not enabled or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["EncoderSettings", "GPTEncoder", "POOLINGS", "transformer_blocks", "truncated_base_model"]
