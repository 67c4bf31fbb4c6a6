"""Both ways the daemon answers a read give the original bytes.

A read reply whose bytes are in local files is handed to libfuse as fd
ranges, which it splices into /dev/fuse; a reply of more pieces than its
pipe holds is copied by the daemon into a buffer instead
(fs/splice_budget.h). An image of many small files next to a big one makes
both happen; the status file counts them."""

import mmap
import os
import random

from itlib import corpus as corpus_mod
from itlib.checks import sha256_file


def test_spliced_and_copied_replies_give_the_same_bytes(jig, tmp_path):
    rng = random.Random(7)
    tree = tmp_path / "tree"
    # 400 files of 1-2 KiB: a 768 KiB read covers about 500 pieces (slices
    # and the directory records between them), far more than a pipe holds.
    for i in range(400):
        p = tree / "pool" / "small" / f"s{i:03d}.deb"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randint(1100, 2000)))
    big = tree / "pool" / "big" / "big_1.0_amd64.deb"
    big.parent.mkdir(parents=True)
    big.write_bytes(rng.randbytes(6 << 20))
    lists = {"sha256": tmp_path / "sha256.list"}
    corpus_mod.write_checksum_list(tree, lists["sha256"], "sha256")
    jigdo, image = corpus_mod.xorriso(tmp_path / "img", tree, lists, "sha256", "gzip")

    m = jig.mount([jigdo], extra=["--offline", "--local", f"{corpus_mod.LABEL}={tree}"])
    # O_DIRECT reads of 768 KiB reach the daemon as requests of that size
    # (the largest it asks for with the default fs.pipe-max-size), whatever
    # the kernel's read-ahead is: ~750 pieces each, too many for the pipe.
    chunk = 768 << 10
    buf = mmap.mmap(-1, chunk)  # page-aligned, as O_DIRECT wants
    fd = os.open(m.path(image.name), os.O_RDONLY | os.O_DIRECT)
    try:
        with open(image.iso, "rb") as orig:
            off = 0
            while True:
                n = os.preadv(fd, [buf], off)
                want = orig.read(chunk)
                assert buf[:n] == want, f"O_DIRECT read at {off} differs"
                if n == 0:
                    break
                off += n
            assert off == image.iso.stat().st_size
    finally:
        os.close(fd)
    assert m.status()["fs"]["replies"]["copied"] > 0, m.status()["fs"]["replies"]
    # Page-cache reads: the kernel's read-ahead requests, most spliced.
    assert sha256_file(m.path(image.name)) == sha256_file(image.iso)
    replies = m.status()["fs"]["replies"]
    assert replies["fd_backed"] > 0, replies
