"""--scan of image files (old ISOs, tars) and head-sum filtering of trees.

* The head sums every producer writes (xorriso, genisoimage, jigdo-file;
  MD5 and SHA256) equal RsyncSum64 over the files' first blockLen bytes
  with the table in core/rsync_sum_table.inc.
* An image is rebuilt bit-exact, --offline and without --local, from
  nothing but: an older ISO file holding the same packages in another
  layout beside other files; two ISO files that only together hold every
  package; a tar of the tree.
* A remount over the same unchanged ISO reads none of it again (the scan's
  record), and still reads bit-exact; after the ISO changed (touch), it is
  scanned again.
* A tree of many decoys of the slices' sizes: each costs a head read, none
  is hashed; only the real files are checked whole.
* jigdoofus-ctl plan counts slices found in image files as local.
"""

import json
import os
from pathlib import Path
import re
import struct
import subprocess
import tarfile

from itlib import checks, mounting
from itlib.corpus import LABEL

VID = "xorriso-md5-gzip"
REPO = Path(__file__).resolve().parents[2]
PRODUCERS = ["xorriso-md5-gzip", "xorriso-sha256-bzip2", "genisoimage-md5", "jigdo-file-md5-gzip",
             "jigdo-file-sha256-bzip2"]


def table():
    text = (REPO / "core" / "rsync_sum_table.inc").read_text()
    t = [int(x, 16) for x in re.findall(r"0x[0-9a-f]{8}", text)]
    assert len(t) == 256
    return t


def rsync_sum64(data, t):
    lo = hi = 0
    for b in data:
        lo = (lo + t[b]) & 0xFFFFFFFF
        hi = (hi + lo) & 0xFFFFFFFF
    return lo | hi << 32


def desc_entries(template):
    data = Path(template).read_bytes()
    desc_len = int.from_bytes(data[-6:], "little")
    desc = data[len(data) - desc_len:]
    assert desc[:4] == b"DESC"
    sizes = {1: 22, 2: 6, 3: 22, 5: 26, 6: 30, 8: 42, 9: 46}
    pos = 10
    while pos < desc_len - 6:
        kind = desc[pos]
        yield kind, desc[pos + 1:pos + 1 + sizes[kind]]
        pos += 1 + sizes[kind]


def template_of(v):
    return v.jigdo.with_suffix(".template")


def test_every_producers_head_sums_match_our_table(corpus):
    import hashlib
    t = table()
    tree = Path(corpus.variant(VID).local[LABEL])
    by_digest = {}
    for p in tree.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            by_digest[hashlib.md5(data).digest()] = data
            by_digest[hashlib.sha256(data).digest()] = data
    for vid in PRODUCERS:
        entries = list(desc_entries(template_of(corpus.variant(vid))))
        block_len = None
        for kind, body in entries:
            if kind == 5:
                block_len = struct.unpack("<I", body[22:26])[0]
            if kind == 8:
                block_len = struct.unpack("<I", body[38:42])[0]
        assert block_len, vid
        checked = 0
        for kind, body in entries:
            if kind not in (6, 9):
                continue
            head = struct.unpack("<Q", body[6:14])[0]
            data = by_digest[body[14:30] if kind == 6 else body[14:46]]
            assert rsync_sum64(data[:block_len], t) == head, (vid, len(data))
            checked += 1
        assert checked > 20, vid


def make_iso(out, *dirs, label="OLD"):
    """A plain ISO (no jigdo) of the given (source, path-in-iso) pairs."""
    cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", label, "-graft-points", "-o", str(out)]
    cmd += [f"{inside}={src}" for src, inside in dirs]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def mount_scanning(jig, v, tmp_path, paths, cache=None, extra=()):
    args = ["--offline"]
    for p in paths:
        args += ["--scan", str(p)]
    return jig.mount([v.jigdo], cache_dir=cache or tmp_path / "cache", extra=args + list(extra))


def scan_status(m):
    return m.status()["scan"]


def assert_bit_exact(m, v):
    (img,) = v.images
    assert checks.sha256_file(m.path(img.name)) == checks.sha256_file(img.iso)


def test_rebuilt_from_an_older_iso_file_alone(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    tree = Path(v.local[LABEL])
    # An "older release": the same packages under another directory, next
    # to files the new image does not have.
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(5):
        (extra / f"other{i}.deb").write_bytes(os.urandom(10_000 + 3_000 * i))
    old = make_iso(tmp_path / "old.iso", (tree / "pool", "/debian-old/pool"), (extra, "/extra"))
    m = mount_scanning(jig, v, tmp_path, [old])
    assert_bit_exact(m, v)
    sc = scan_status(m)["image_files"]
    assert sc["done"] and sc["files_from_record"] == 0 and sc["bytes_read"] == old.stat().st_size, sc
    assert sc["slices_found"] > 0
    m.unmount()

    # Remount: the record answers, the ISO is not read again.
    m = mount_scanning(jig, v, tmp_path, [old])
    assert_bit_exact(m, v)
    sc = scan_status(m)["image_files"]
    assert sc["files_from_record"] == 1 and sc["bytes_read"] == 0, sc
    m.unmount()

    # The ISO changed (its mtime, at least): scanned again.
    os.utime(old, None)
    m = mount_scanning(jig, v, tmp_path, [old])
    assert_bit_exact(m, v)
    sc = scan_status(m)["image_files"]
    assert sc["files_from_record"] == 0 and sc["bytes_read"] == old.stat().st_size, sc


def test_rebuilt_from_two_iso_files_that_together_hold_everything(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    tree = Path(v.local[LABEL])
    # Every other package in each (pool/contrib holds copies of pool/main).
    debs = sorted(p for p in (tree / "pool" / "main").rglob("*") if p.is_file())
    main = make_iso(tmp_path / "a.iso", *[(p, "/a/" + p.name) for p in debs[::2]], label="A")
    contrib = make_iso(tmp_path / "b.iso", *[(p, "/b/" + p.name) for p in debs[1::2]], label="B")
    # One alone is not enough: some reads fail.
    m = mount_scanning(jig, v, tmp_path, [main], cache=tmp_path / "c1")
    (img,) = v.images
    errs = [checks.read_errno(m.path(img.name), off, min(ln, 4096))
            for off, ln, rel in checks.file_extents(img.iso, tree)]
    assert checks.EIO in errs and None in errs, errs
    m.unmount()
    m = mount_scanning(jig, v, tmp_path, [main, contrib], cache=tmp_path / "c2")
    assert_bit_exact(m, v)
    sc = scan_status(m)["image_files"]
    assert sc["files"] == 2 and sc["files_done"] == 2, sc


def test_rebuilt_from_a_tar_file(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    tree = Path(v.local[LABEL])
    tar = tmp_path / "pool.tar"
    with tarfile.open(tar, "w", format=tarfile.GNU_FORMAT) as t:
        t.add(tree / "pool", arcname="pool")
    m = mount_scanning(jig, v, tmp_path, [tar])
    assert_bit_exact(m, v)


def test_plan_counts_slices_in_image_files_as_local(corpus, tmp_path):
    v = corpus.variant(VID)
    old = make_iso(tmp_path / "old.iso", (Path(v.local[LABEL]) / "pool", "/pool"))
    r = subprocess.run([mounting.ctl_binary(), "plan", "--offline", "--cache-dir", str(tmp_path / "cache"),
                        "--scan", str(old), str(v.jigdo), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (img,) = json.loads(r.stdout)["images"]
    assert img["download_bytes"] == 0 and img["local_bytes"] + img["literal_bytes"] == img["size"], img


def test_a_tree_of_decoys_costs_one_head_read_each(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    tree = Path(v.local[LABEL])
    real = [p for p in tree.rglob("*.deb") if p.stat().st_size >= 1024]
    scan = tmp_path / "scan"
    # Decoys: for each real package, 25 files of its exact size that differ
    # from it (random bytes) ...
    decoys = 0
    for i, p in enumerate(real):
        d = scan / "decoys" / f"{i:03d}"
        d.mkdir(parents=True)
        size = p.stat().st_size
        for k in range(25):
            (d / f"decoy{k}.deb").write_bytes(os.urandom(size))
            decoys += 1
    # ... and the real packages in a second tree, walked after the first,
    # so every decoy is a candidate before the real file is.
    m = mount_scanning(jig, v, tmp_path, [scan, tree])
    assert_bit_exact(m, v)
    sc = scan_status(m)
    assert sc["walked"] and sc["files_seen"] >= decoys + len(real), sc
    # Every decoy of a wanted size was rejected by its head, never hashed;
    # what was checked whole is at most the real files.
    assert sc["heads_rejected"] >= decoys * 0.9, sc
    assert sc["files_checked"] <= len(real), sc
