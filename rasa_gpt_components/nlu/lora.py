"""``lora`` mode: fine-tune the encoder's blocks with LoRA adapters (peft).

The shared model is never touched: the first ``layer`` blocks are copied, LoRA
adapters are injected into the copy's linear layers and trained together with a
linear classifier on the pooled states; then the adapters are merged into the
copy, so prediction costs what it costs in ``head`` mode. Only the adapter
matrices are persisted (a few MB): loading re-creates the copy from the base
weights and merges them again.
"""

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from rasa_gpt_components.models.encoder import GPTEncoder

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"


@dataclass(frozen=True)
class LoraSettings:
    """How the adapters are shaped and trained (the classifier's ``lora_*``
    options; see docs/intent_classifier.md); checked once, here."""

    random_seed: int
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    epochs: int = 3
    min_steps: int = 200
    learning_rate: float = 5e-4
    batch_size: int = 16

    def __post_init__(self) -> None:
        for name in ("rank", "batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"lora_{name} must be at least 1, got {getattr(self, name)}.")


def target_modules(blocks: Any) -> List[str]:
    """Names (last part) of the linear layers inside the blocks: q/k/v/o and MLP
    projections for Llama-style models, ``c_attn``/``c_proj``/``c_fc`` for GPT-2."""
    import torch
    from transformers.pytorch_utils import Conv1D

    names = {
        name.rsplit(".", 1)[-1]
        for name, module in blocks.named_modules()
        if isinstance(module, (torch.nn.Linear, Conv1D))
    }
    if not names:
        raise ValueError("The model's blocks have no linear layers for LoRA adapters.")
    return sorted(names)


def _with_adapters(blocks: Any, settings: LoraSettings, targets: Sequence[str]) -> Any:
    """A peft LoraModel around a private float32 copy of ``blocks``."""
    import torch
    from peft import LoraConfig, LoraModel

    from transformers.pytorch_utils import Conv1D

    own = copy.deepcopy(blocks).float()
    config = LoraConfig(
        fan_in_fan_out=any(isinstance(m, Conv1D) for m in own.modules()),  # GPT-2 stores W transposed
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(targets),
        bias="none",
    )
    torch.manual_seed(settings.random_seed)  # the adapters' A matrices start random
    return LoraModel(own, config, ADAPTER_NAME)


def adapter_arrays(tuner: Any) -> Dict[str, np.ndarray]:
    """The trained adapter matrices, by parameter name."""
    return {
        name: parameter.detach().cpu().numpy().astype(np.float32)
        for name, parameter in tuner.model.named_parameters()
        if "lora_" in name
    }


def merged_blocks(tuner: Any) -> Any:
    """The copy of the blocks with the adapters merged into their weights."""
    blocks = tuner.merge_and_unload()
    blocks.eval()
    for parameter in blocks.parameters():
        parameter.requires_grad_(False)
    return blocks


def apply_adapter(encoder: GPTEncoder, arrays: Dict[str, np.ndarray], settings: LoraSettings, targets: Sequence[str]) -> None:
    """Rebuild adapted blocks from saved adapter matrices and make ``encoder`` use them."""
    import torch

    tuner = _with_adapters(encoder.blocks, settings, targets)
    state = {name: torch.from_numpy(np.asarray(value)) for name, value in arrays.items()}
    expected = {name for name, _ in tuner.model.named_parameters() if "lora_" in name}
    if set(state) != expected:
        raise ValueError(
            "The saved LoRA adapter does not fit this model's blocks "
            f"({len(set(state) ^ expected)} parameters differ)."
        )
    tuner.model.load_state_dict(state, strict=False)
    encoder.use_blocks(merged_blocks(tuner))


def _batches(lengths: Sequence[int], batch_size: int, generator: Any) -> List[List[int]]:
    """One epoch of shuffled batches whose texts have similar lengths (less padding):
    shuffle, sort windows of 32 batches by length, cut, shuffle the batches."""
    import torch

    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = 32 * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train_adapter(
    encoder: GPTEncoder,
    texts: Sequence[str],
    labels: Sequence[int],
    num_classes: int,
    settings: LoraSettings,
    progress: bool = True,
) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """Fine-tune LoRA adapters on ``texts``/``labels`` (class indices); the
    encoder then runs the adapted blocks. Returns the adapter matrices and the
    names of the layers they adapt."""
    import torch
    from tqdm import tqdm

    targets = target_modules(encoder.blocks)
    tuner = _with_adapters(encoder.blocks, settings, targets)
    body = encoder.body_with(tuner.model, quantize=False)  # trained in float32
    cleaned = list(texts)  # cleaned by the classifier
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    generator = torch.Generator().manual_seed(settings.random_seed)

    # standardise the pooled states (mid-layer states have a few huge dimensions)
    with torch.inference_mode():
        sample = torch.randperm(len(cleaned), generator=generator)[:512].tolist()
        start = torch.cat(
            [
                encoder.pool(body, encoder.tokenize([cleaned[i] for i in sample[k : k + 64]]))
                for k in range(0, len(sample), 64)
            ]
        )
    shift, scale = start.mean(0), start.std(0) + 1e-4
    classifier = torch.nn.Linear(start.shape[1], num_classes)
    torch.nn.init.zeros_(classifier.weight)
    torch.nn.init.zeros_(classifier.bias)

    adapters = [p for n, p in tuner.model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": adapters, "lr": settings.learning_rate},
            {"params": classifier.parameters(), "lr": 10 * settings.learning_rate},
        ],
        weight_decay=0.01,
    )
    steps_per_epoch = math.ceil(len(cleaned) / settings.batch_size)
    epochs = max(settings.epochs, math.ceil(settings.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup)))
    )
    body.train()
    try:
        with torch.enable_grad(), tqdm(total=total, desc="GPTIntentClassifier LoRA", unit="step", disable=not progress) as bar:
            for epoch in range(epochs):
                seen, loss_sum, correct = 0, 0.0, 0
                for index in _batches([len(t) for t in cleaned], settings.batch_size, generator):
                    pooled = encoder.pool(body, encoder.tokenize([cleaned[i] for i in index]))
                    logits = classifier(torch.nn.functional.dropout((pooled - shift) / scale, 0.1, training=True))
                    loss = torch.nn.functional.cross_entropy(logits, y[index], label_smoothing=0.1)
                    optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(adapters, 1.0)
                    optimizer.step()
                    schedule.step()
                    seen += len(index)
                    loss_sum += float(loss.detach()) * len(index)
                    correct += int((logits.argmax(1) == y[index]).sum())
                    bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
                    bar.update(1)
    finally:
        body.eval()
    arrays = adapter_arrays(tuner)
    encoder.use_blocks(merged_blocks(tuner))
    logger.info("LoRA: %d epochs, %d steps, %d adapter parameters.", epochs, total, sum(a.size for a in arrays.values()))
    return arrays, targets


__all__ = ["LoraSettings", "apply_adapter", "target_modules", "train_adapter"]
