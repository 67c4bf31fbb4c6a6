"""Every producer variant (xorriso / genisoimage / jigdo-file / mksquashfs,
MD5 and SHA256, gzip and bzip2 templates, a merged two-image .jigdo, a
64 MiB zero-padded area) mounted with --local and compared byte for byte
with the original image."""

import os
import stat
import zlib

import pytest

from conftest import expected_names, listing_without_status
from itlib.checks import boundaries, compare_random_reads, pread_full, sha256_file
from itlib.corpus import VARIANT_IDS

RANDOM_READS = 2000


@pytest.mark.parametrize("vid", VARIANT_IDS)
def test_listing_and_sizes(corpus, jig, vid):
    v = corpus.variant(vid)
    m = jig.mount_variant(v)
    assert listing_without_status(m.mountpoint) == expected_names(v)
    for im in v.images:
        st = os.stat(m.path(im.name))
        assert stat.S_ISREG(st.st_mode), im.name
        assert st.st_size == im.iso.stat().st_size, im.name
        assert st.st_mode & 0o222 == 0, f"{im.name} is writable: {oct(st.st_mode)}"


@pytest.mark.parametrize("vid", VARIANT_IDS)
def test_random_reads_match_original(corpus, jig, vid):
    # a fresh mount: the kernel page cache of the mount is cold, so these
    # reads reach the daemon
    v = corpus.variant(vid)
    m = jig.mount_variant(v)
    for im in v.images:
        bounds = boundaries(im.iso, corpus.tree)
        assert len(bounds) > 20, f"only {len(bounds)} slice boundaries found in {im.iso}"
        compare_random_reads(m.path(im.name), im.iso, bounds,
                             n=RANDOM_READS, seed=zlib.crc32(f"{vid}/{im.name}".encode()))


@pytest.mark.parametrize("vid", VARIANT_IDS)
def test_whole_image_sha256_and_eof(corpus, jig, vid):
    v = corpus.variant(vid)
    m = jig.mount_variant(v)
    for im in v.images:
        p = m.path(im.name)
        assert sha256_file(p) == sha256_file(im.iso), im.name
        size = im.iso.stat().st_size
        fd = os.open(p, os.O_RDONLY)
        try:
            assert os.pread(fd, 100, size) == b""
            assert os.pread(fd, 1, size + 12345) == b""
            assert pread_full(fd, 4096, size - 10) == im.iso.read_bytes()[-10:]
        finally:
            os.close(fd)
