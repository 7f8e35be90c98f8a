"""Where trained weights are cached, and how a cache file is written: atomically, so that a
reader sees the old file or the complete new one and an interrupted write leaves nothing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["model_cache_dir", "atomic_write", "source_digest_of"]


def model_cache_dir() -> Path:
    """$SUPERPOSE_MODEL_CACHE, or ~/.cache/superpose/models."""
    env = os.environ.get("SUPERPOSE_MODEL_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "superpose" / "models"


def atomic_write(path: Path, write, suffix: str = "") -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".part" + suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def source_digest_of(*files, extra: str = "") -> str:
    """SHA-256 of the given source files and `extra` (e.g. library versions): a cache key
    part that changes whenever the code that produced a cached result changes."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    h.update(extra.encode())
    return h.hexdigest()
