"""Shared fixtures of the integration tests.

* corpus (session): the tree of package-like files and the images every
  producer made from it (itlib/corpus.py); built once, shared by the test
  files that ctest runs in parallel.
* jig (per test): mounts jigdoofus with a fresh --cache-dir and mountpoint
  under the test's tmp dir and unmounts everything in its finalizer.
* a session check that no mount is left behind and, in sanitizer builds,
  that the daemons wrote no ASan/UBSan report (their stderr is /dev/null once
  they detach, so reports go to files: log_path).

Tools that are missing make the tests FAIL with a message naming them
(.ci/install-deps installs them); nothing is skipped.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from itlib import corpus as corpus_mod  # noqa: E402
from itlib import mounting  # noqa: E402


class Corpus:
    def __init__(self, root, variants):
        self.root = Path(root)
        self.tree = self.root / "tree"
        self._by_id = {v.id: v for v in variants}

    def variant(self, vid):
        return self._by_id[vid]


@pytest.fixture(scope="session")
def corpus():
    root = corpus_mod.default_root()
    variants = corpus_mod.ensure(root)
    return Corpus(root, variants)


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    san_dir = base / "sanitizer-logs"
    san_dir.mkdir(exist_ok=True)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if os.environ.get(var):
            os.environ[var] = os.environ[var] + f":log_path={san_dir}/{var[:-8].lower()}"
    yield
    left = mounting.mounts_under(base)
    for mp in left:
        os.system(f"umount -l '{mp}' 2>/dev/null; fusermount3 -u -z '{mp}' 2>/dev/null")
    reports = sorted(san_dir.glob("*"))
    text = "\n".join(f"--- {r.name}\n{r.read_text(errors='replace')[:4000]}" for r in reports)
    assert not left, f"mounts left behind: {left}"
    assert not reports, f"sanitizer reports from jigdoofus processes:\n{text}"


class Jig:
    """Per-test mount factory."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.cache_dir = tmp_path / "cache"
        self.mounts = []
        self.n = 0

    def mountpoint(self):
        self.n += 1
        mp = self.tmp / f"mnt{self.n}"
        mp.mkdir()
        return mp

    def mount(self, sources, extra=(), mountpoint=None, cache_dir="default", env=None):
        mp = mountpoint or self.mountpoint()
        cd = self.cache_dir if cache_dir == "default" else cache_dir
        m = mounting.mount_jigdoofus(sources, mp, cache_dir=cd, extra=extra,
                                     workdir=self.tmp / "logs", env=env)
        self.mounts.append(m)
        return m

    def mount_variant(self, v, extra=()):
        return self.mount([v.jigdo], extra=v.local_args() + ["--offline"] + list(extra))

    def adopt(self, mountpoint):
        """Registers a mount made some other way (mount -t fuse...)."""
        m = mounting.Mount(mountpoint, None, "")
        self.mounts.append(m)
        return m

    def close(self):
        errors = []
        for m in reversed(self.mounts):
            try:
                m.unmount()
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, "; ".join(errors)


@pytest.fixture
def jig(tmp_path):
    j = Jig(tmp_path)
    yield j
    j.close()


def expected_names(variant):
    return sorted(i.name for i in variant.images)


def listing_without_status(mountpoint):
    """os.listdir of the root; the only extra entry allowed is the hidden
    status file."""
    names = os.listdir(mountpoint)
    extra = [n for n in names if n == mounting.STATUS_FILE]
    assert len(extra) <= 1
    return sorted(n for n in names if n != mounting.STATUS_FILE)


@pytest.fixture
def net(tmp_path, corpus):
    """HTTP servers (nginx, fault_server.py) and served sites for the
    network tests (itlib/http.py); every server is stopped by pid."""
    from itlib import http
    n = http.Net(tmp_path, corpus.tree)
    yield n
    n.close()
