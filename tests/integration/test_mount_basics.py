"""The mount itself: the hidden status file, read-only-ness, several SOURCEs
and a directory SOURCE, a gzip-compressed .jigdo, the cache surviving a
remount, what df and findmnt show."""

import errno
import gzip
import json
import os
import subprocess

from conftest import expected_names, listing_without_status
from itlib import mounting
from itlib.checks import sha256_file


def test_status_file_is_hidden_json(corpus, jig):
    v = corpus.variant("xorriso-sha256-gzip")
    m = jig.mount_variant(v)
    names = os.listdir(m.mountpoint)
    assert sorted(n for n in names if not n.startswith(".")) == expected_names(v)
    assert all(n == mounting.STATUS_FILE for n in names if n.startswith("."))
    st = os.stat(m.path(mounting.STATUS_FILE))
    assert st.st_mode & 0o222 == 0
    status = m.status()
    assert isinstance(status, dict) and status, status


def test_read_only(corpus, jig):
    v = corpus.variant("xorriso-md5-gzip")
    m = jig.mount_variant(v)
    img = m.path(v.images[0].name)
    for attempt in (lambda: os.open(img, os.O_RDWR),
                    lambda: os.open(m.path("new-file"), os.O_WRONLY | os.O_CREAT, 0o644),
                    lambda: os.mkdir(m.path("newdir")),
                    lambda: os.unlink(img),
                    lambda: os.rename(img, m.path("renamed.iso"))):
        try:
            attempt()
            raise AssertionError("a write operation succeeded on the mount")
        except OSError as e:
            assert e.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSYS), e
    assert listing_without_status(m.mountpoint) == expected_names(v)


def test_df_and_findmnt_show_the_source_and_no_disk_full(corpus, jig):
    v = corpus.variant("xorriso-md5-gzip")
    m = jig.mount_variant(v)
    source = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", str(m.mountpoint)],
                            capture_output=True, text=True, check=True).stdout.split()
    assert source == [str(v.jigdo), "fuse.jigdoofus"], source
    df = subprocess.run(["df", "--output=source,size,pcent,ipcent", "-B1", str(m.mountpoint)],
                        capture_output=True, text=True, check=True).stdout.splitlines()[1].split()
    assert df[0] == str(v.jigdo), df
    total = sum(os.path.getsize(m.path(i.name)) for i in v.images)
    assert total <= int(df[1]) < total + 4096 * len(v.images) + 4096, (df, total)
    # A read-only image is not a full disk: monitoring must not fire.
    assert df[2] == "0%" and df[3] == "0%", df
    st = os.statvfs(m.mountpoint)
    assert st.f_flag & os.ST_RDONLY


def test_several_sources_and_a_directory_source(corpus, jig, tmp_path):
    a = corpus.variant("xorriso-sha256-bzip2")
    b = corpus.variant("genisoimage-md5")
    c = corpus.variant("jigdo-file-sha256-gzip")
    d = corpus.variant("jigdo-file-md5-bzip2")
    # a directory holding two .jigdo files (and their templates)
    src_dir = tmp_path / "jigdos"
    src_dir.mkdir()
    for v in (c, d):
        os.symlink(v.jigdo, src_dir / v.jigdo.name)
        os.symlink(v.jigdo.with_suffix(".template"), src_dir / v.jigdo.with_suffix(".template").name)
    m = jig.mount([a.jigdo, b.jigdo, src_dir], extra=a.local_args() + ["--offline"])
    want = sorted(expected_names(a) + expected_names(b) + expected_names(c) + expected_names(d))
    assert listing_without_status(m.mountpoint) == want
    for v in (a, b, c, d):
        im = v.images[0]
        assert os.stat(m.path(im.name)).st_size == im.iso.stat().st_size


def test_gzip_compressed_jigdo(corpus, jig, tmp_path):
    v = corpus.variant("xorriso-sha256-gzip")
    d = tmp_path / "gz"
    d.mkdir()
    (d / v.jigdo.name).write_bytes(gzip.compress(v.jigdo.read_bytes()))
    os.symlink(v.jigdo.with_suffix(".template"), d / v.jigdo.with_suffix(".template").name)
    m = jig.mount([d / v.jigdo.name], extra=v.local_args() + ["--offline"])
    im = v.images[0]
    assert sha256_file(m.path(im.name)) == sha256_file(im.iso)


def test_cache_survives_remount(corpus, jig):
    v = corpus.variant("jigdo-file-sha256-bzip2")
    im = v.images[0]
    want = sha256_file(im.iso)
    m = jig.mount_variant(v)
    assert sha256_file(m.path(im.name)) == want
    m.unmount()
    assert not mounting.is_mounted(m.mountpoint)
    m2 = jig.mount_variant(v)  # same --cache-dir
    assert sha256_file(m2.path(im.name)) == want
    json.dumps(m2.status())  # still serves a parseable status
