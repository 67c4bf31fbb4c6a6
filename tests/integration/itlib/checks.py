"""Comparisons of a mounted image with the original: whole-file hashes,
random (offset, length) reads biased towards slice boundaries and the end."""

import errno
import hashlib
import math
import os
import random
from pathlib import Path

MAX_READ = 3 * 1024 * 1024
_boundary_cache = {}


def sha256_file(path, bufsize=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def pread_full(fd, length, offset):
    """pread until `length` bytes or EOF (POSIX allows short reads)."""
    chunks = []
    while length > 0:
        b = os.pread(fd, length, offset)
        if not b:
            break
        chunks.append(b)
        length -= len(b)
        offset += len(b)
    return b"".join(chunks)


def file_extents(iso: Path, tree: Path, min_size=1024):
    """[(offset, length, relpath)] of every tree file (>= min_size) found in
    the image, duplicates included. Found by content search: the tree's
    files are random bytes, so a 512-byte prefix is unique."""
    key = (str(iso), str(tree))
    if key in _boundary_cache:
        return _boundary_cache[key]
    data = Path(iso).read_bytes()
    ext = []
    for p in sorted(Path(tree).rglob("*")):
        if not p.is_file() or p.stat().st_size < min_size:
            continue
        content = p.read_bytes()
        probe = content[:512]
        pos = data.find(probe)
        while pos >= 0:
            if data[pos:pos + len(content)] == content:
                ext.append((pos, len(content), str(p.relative_to(tree))))
            pos = data.find(probe, pos + 1)
    ext.sort()
    _boundary_cache[key] = ext
    return ext


def boundaries(iso, tree):
    b = set()
    for off, ln, _ in file_extents(iso, tree):
        b.add(off)
        b.add(off + ln)
    return sorted(b)


def random_ranges(size, bounds, n, seed):
    """n (offset, length) pairs: lengths log-uniform in 1 B .. 3 MiB; a third
    of the offsets straddle a slice boundary, some touch the last bytes,
    the rest are uniform."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = int(math.exp(rng.uniform(0, math.log(MAX_READ))))
        kind = i % 6
        if kind in (0, 1) and bounds:
            b = rng.choice(bounds)
            off = b - rng.randint(1, max(1, min(length, 8192)))  # starts before, crosses b
        elif kind == 2:
            off = size - rng.randint(1, min(size, 4 * length + 1))
        else:
            off = rng.randrange(size)
        off = max(0, min(off, size - 1))
        out.append((off, length))
    return out


def compare_random_reads(mounted: Path, original: Path, bounds, n=2000, seed=1):
    """Asserts n random preads of `mounted` equal those of `original`."""
    size = os.stat(original).st_size
    fm = os.open(mounted, os.O_RDONLY)
    fo = os.open(original, os.O_RDONLY)
    try:
        for off, length in random_ranges(size, bounds, n, seed):
            want = pread_full(fo, length, off)
            got = pread_full(fm, length, off)
            if got != want:
                first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                             min(len(got), len(want)))
                raise AssertionError(
                    f"{mounted}: pread(len={length}, off={off}) differs from the original "
                    f"(got {len(got)} bytes, want {len(want)}; first difference at image "
                    f"offset {off + first})")
    finally:
        os.close(fm)
        os.close(fo)


def read_errno(path, offset, length):
    """Returns the errno of a failing pread, or None if it succeeded."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.pread(fd, length, offset)
        return None
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


EIO = errno.EIO


_CHILD_READ = r"""
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    b = os.pread(fd, int(sys.argv[3]), int(sys.argv[2]))
    print("ok", len(b), hashlib.sha256(b).hexdigest(), flush=True)
except OSError as e:
    print("errno", e.errno, flush=True)
"""


def read_in_child(path, offset, length, timeout):
    """One pread in a child process, bounded by `timeout` seconds (a read
    that hangs fails the test instead of hanging it). Returns
    ("ok", nbytes, sha256hex) or ("errno", n)."""
    import subprocess
    import sys
    try:
        p = subprocess.run([sys.executable, "-c", _CHILD_READ, str(path), str(offset), str(length)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"pread({path}, len={length}, off={offset}) still blocked after {timeout}s")
    words = p.stdout.split()
    assert words, f"reader child failed: {p.stderr[-1500:]}"
    return ("ok", int(words[1]), words[2]) if words[0] == "ok" else ("errno", int(words[1]))


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()
