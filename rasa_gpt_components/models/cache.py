"""The cache folder: prepared (converted) models and remembered checksums.

Location: ``$RASA_GPT_CACHE`` if set, else ``~/.cache/rasa_gpt_components``.
"""

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, Optional

from tqdm import tqdm

CACHE_ENV = "RASA_GPT_CACHE"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20
_digest_lock = threading.Lock()


def cache_root() -> Path:
    """The cache folder (created on first use)."""
    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "rasa_gpt_components")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepared_dir(name: str, source_sha256: str) -> Path:
    """Where the safetensors copy of a source file with this digest lives."""
    return cache_root() / "prepared" / f"{name}-{source_sha256[:12]}"


def read_manifest(directory: Path) -> Optional[Dict[str, Any]]:
    """The manifest of a prepared directory, or None when it is absent or unreadable."""
    try:
        return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_manifest(directory: Path, manifest: Dict[str, Any]) -> None:
    """Write the manifest last, atomically: its presence marks a complete preparation."""
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)


def sha256_file(path: Path, progress: bool = False) -> str:
    """SHA-256 of a file, remembered in the cache by (path, size, mtime).

    The second call for an unchanged file costs one ``stat``.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    index_file = cache_root() / "digests.json"
    with _digest_lock:
        index = _read_json(index_file)
        if key in index:
            return index[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle, tqdm(
        total=stat.st_size,
        unit="B",
        unit_scale=True,
        desc=f"SHA-256 {path.name}",
        disable=not progress,
    ) as bar:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    value = digest.hexdigest()
    with _digest_lock:
        index = _read_json(index_file)
        index[key] = value
        tmp = index_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
        os.replace(tmp, index_file)
    return value


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def directory_size(directory: Path) -> int:
    """Total size in bytes of the files below ``directory``."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
