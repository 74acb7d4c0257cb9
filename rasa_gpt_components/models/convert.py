"""One-time conversion of a GGUF file into a Hugging Face safetensors directory.

transformers de-quantises GGUF weights on every load (about 27 s for the
default model on 2 cores); the converted copy reloads in under a second.
"""

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from filelock import FileLock

from rasa_gpt_components.models import cache
from rasa_gpt_components.models.errors import CorruptModelError, ModelLoadError

logger = logging.getLogger(__name__)


def prepare_gguf(
    source: Path,
    name: str,
    expected_sha256: str = "",
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Return a prepared safetensors directory for ``source``, converting it if needed.

    Args:
        source: the ``.gguf`` file.
        name: a short name used for the cache folder.
        expected_sha256: when given, the file must have this digest.
        force: convert again even if a prepared copy exists.
        progress: show progress bars.

    Raises:
        CorruptModelError: the checksum does not match or the file cannot be parsed.
    """
    source = Path(source)
    digest = cache.sha256_file(source, progress=progress)
    if expected_sha256 and digest != expected_sha256:
        raise CorruptModelError(
            f"{source} has SHA-256 {digest}, expected {expected_sha256}: the file is "
            f"damaged or not the expected model. Reinstall the package that ships it."
        )
    target = cache.prepared_dir(name, digest)
    with FileLock(str(target) + ".lock"):
        if not force and is_prepared(target, digest):
            return target
        started = time.perf_counter()
        logger.info("Converting %s into %s (once).", source, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        try:
            _convert(source, work)
            files = {
                p.name: {"size": p.stat().st_size}
                for p in sorted(work.iterdir())
                if p.is_file()
            }
            cache.write_manifest(
                work,
                {
                    "name": name,
                    "source": str(source),
                    "source_sha256": digest,
                    "format": "safetensors",
                    "files": files,
                    "convert_seconds": round(time.perf_counter() - started, 1),
                },
            )
            if target.exists():
                shutil.rmtree(target)
            work.rename(target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return target


def is_prepared(directory: Path, source_sha256: str) -> bool:
    """Whether ``directory`` holds a complete conversion of the file with this digest."""
    manifest = cache.read_manifest(directory)
    if not manifest or manifest.get("source_sha256") != source_sha256:
        return False
    for file_name, info in manifest.get("files", {}).items():
        path = directory / file_name
        if not path.is_file() or path.stat().st_size != info["size"]:
            return False
    return True


def _convert(source: Path, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": source.name, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), **kwargs)
    except ValueError as error:
        if "architecture" in str(error).lower() or "not supported" in str(error).lower():
            from rasa_gpt_components.models.errors import UnsupportedArchitectureError

            raise UnsupportedArchitectureError(
                f"transformers cannot load the GGUF file {source}: {error}"
            ) from error
        raise CorruptModelError(f"{source} is not a readable GGUF file: {error}") from error
    except (OSError, EOFError, KeyError, IndexError) as error:
        raise CorruptModelError(
            f"{source} is not a readable GGUF file (truncated or damaged?): {error}"
        ) from error
    except ModelLoadError:
        raise
    apply_gguf_special_tokens(tokenizer, source)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))


def apply_gguf_special_tokens(tokenizer: Any, source: Path) -> None:
    """Set the special tokens and BOS/EOS behaviour the GGUF metadata declares.

    transformers 4.57 builds the tokenizer of a GGUF file with ``gpt2``-style
    vocabularies as a Llama tokenizer that prepends BOS and uses BOS as EOS
    (for SmolLM2 it would end generations on ``<|im_start|>`` instead of
    ``<|im_end|>``); the file itself says what is right.
    """
    from gguf import GGUFReader

    fields = GGUFReader(str(source)).fields

    def value(key: str) -> Optional[Any]:
        field = fields.get(f"tokenizer.ggml.{key}")
        return None if field is None else field.contents()

    vocab = {index: token for token, index in tokenizer.get_vocab().items()}
    for attribute, key in (
        ("bos_token", "bos_token_id"),
        ("eos_token", "eos_token_id"),
        ("unk_token", "unknown_token_id"),
        ("pad_token", "padding_token_id"),
    ):
        token_id = value(key)
        if token_id is not None and int(token_id) in vocab:
            setattr(tokenizer, attribute, vocab[int(token_id)])
    for flag in ("add_bos_token", "add_eos_token"):
        declared = value(flag)
        if declared is not None and hasattr(tokenizer, flag):
            setattr(tokenizer, flag, bool(declared))
