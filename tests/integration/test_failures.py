"""Slices that cannot be produced: a file MISSING from the local tree and a
CORRUPTED one (same size, other bytes). Reads touching them fail with EIO
(never wrong bytes), the rest of the image still reads, the mount stays up,
and failures are not remembered: once the file is back, the read works."""

import errno
import os
import random
import shutil

import pytest

from itlib import mounting
from itlib.checks import file_extents, pread_full, sha256_file

VARIANTS = ["xorriso-sha256-gzip", "jigdo-file-md5-gzip"]


def victim_and_other(iso, tree):
    """A tree file that appears once in the image (the victim) and another
    one, both 50-300 KB."""
    ext = file_extents(iso, tree)
    count = {}
    for off, ln, rel in ext:
        count[rel] = count.get(rel, 0) + 1
    # (no space in the name: JTE writes such [Parts] paths unquoted, a
    # separate matter covered by test_producers)
    singles = [(off, ln, rel) for off, ln, rel in ext
               if count[rel] == 1 and 50_000 <= ln <= 300_000 and " " not in rel]
    assert len(singles) >= 2, "corpus has too few mid-sized files"
    return singles[0], singles[-1]


def read_until_error(path, offset, length):
    """Reads [offset, offset+length) in 64 KiB preads. Returns (bytes read
    before the first error, errno or None)."""
    fd = os.open(path, os.O_RDONLY)
    got = []
    try:
        while length > 0:
            n = min(length, 65536)
            try:
                b = os.pread(fd, n, offset)
            except OSError as e:
                return b"".join(got), e.errno
            if not b:
                break
            got.append(b)
            offset += len(b)
            length -= len(b)
        return b"".join(got), None
    finally:
        os.close(fd)


def setup_copy(corpus, tmp_path, vid):
    v = corpus.variant(vid)
    tree = tmp_path / "tree"
    shutil.copytree(corpus.tree, tree)
    iso = v.images[0].iso
    victim, other = victim_and_other(iso, corpus.tree)
    return v, tree, iso, victim, other


def mount_with_tree(jig, v, tree):
    return jig.mount([v.jigdo], extra=["--offline", "--local", f"Debian={tree}"])


def assert_unreadable(img, iso_bytes, off, ln):
    inside = off + ln // 2
    got, err = read_until_error(img, inside, 4096)
    assert err == errno.EIO, f"read inside the bad slice: errno {err}, {len(got)} bytes"
    # a read that starts before the slice may return the good bytes before
    # it, never a byte of the bad slice
    got, err = read_until_error(img, off - 3000, ln + 6000)
    assert err == errno.EIO, f"read across the bad slice: errno {err}, {len(got)} bytes"
    assert len(got) <= 3000 and got == iso_bytes[off - 3000:off - 3000 + len(got)]


def assert_rest_readable(m, img, iso_bytes, other):
    off, ln, _ = other
    assert pread_full_path(img, ln, off) == iso_bytes[off:off + ln]
    assert pread_full_path(img, 32768, 0) == iso_bytes[:32768]  # template literal data
    assert mounting.is_mounted(m.mountpoint)
    assert img.name in os.listdir(m.mountpoint)


def pread_full_path(path, length, offset):
    fd = os.open(path, os.O_RDONLY)
    try:
        return pread_full(fd, length, offset)
    finally:
        os.close(fd)


@pytest.mark.parametrize("vid", VARIANTS)
def test_missing_slice_is_eio_then_recovers(corpus, jig, tmp_path, vid):
    v, tree, iso, victim, other = setup_copy(corpus, tmp_path, vid)
    off, ln, rel = victim
    saved = tmp_path / "saved"
    shutil.move(tree / rel, saved)
    m = mount_with_tree(jig, v, tree)
    img = m.path(v.images[0].name)
    iso_bytes = iso.read_bytes()

    assert_unreadable(img, iso_bytes, off, ln)
    assert_rest_readable(m, img, iso_bytes, other)
    assert_unreadable(img, iso_bytes, off, ln)  # still failing, still mounted

    # Restore: the failure was not cached. Copied aside and renamed into
    # place, as a package manager or rsync puts a file back: a read-ahead
    # (the kernel's or ours) that opened a half-copied file would fail that
    # one read, rightly.
    shutil.copyfile(saved, tree / (rel + ".part"))
    os.rename(tree / (rel + ".part"), tree / rel)
    assert pread_full_path(img, ln, off) == iso_bytes[off:off + ln]
    assert sha256_file(img) == sha256_file(iso)


@pytest.mark.parametrize("vid", VARIANTS)
def test_corrupted_local_file_is_eio_never_wrong_bytes(corpus, jig, tmp_path, vid):
    v, tree, iso, victim, other = setup_copy(corpus, tmp_path, vid)
    off, ln, rel = victim
    good = (tree / rel).read_bytes()
    bad = bytearray(good)
    bad[ln // 2] ^= 0xFF                      # one flipped byte
    (tree / rel).write_bytes(bytes(bad))
    m = mount_with_tree(jig, v, tree)
    img = m.path(v.images[0].name)
    iso_bytes = iso.read_bytes()

    assert_unreadable(img, iso_bytes, off, ln)
    assert_rest_readable(m, img, iso_bytes, other)

    # entirely different bytes, same size
    (tree / rel).write_bytes(random.Random(7).randbytes(ln))
    assert_unreadable(img, iso_bytes, off, ln)

    # Put back by rename, as in test_missing_slice_is_eio_then_recovers.
    (tree / (rel + ".part")).write_bytes(good)
    os.rename(tree / (rel + ".part"), tree / rel)
    assert pread_full_path(img, ln, off) == iso_bytes[off:off + ln]
