"""The kernel's squashfs driver reading an image through jigdoofus: an
uncompressed squashfs of the tree, its template made by jigdo-file, loop-
mounted from the jigdoofus mount; every file must compare equal."""

import subprocess
import time

from itlib import mounting


def test_loop_mount_squashfs_through_jigdoofus(corpus, jig, tmp_path):
    v = corpus.variant("squashfs")
    m = jig.mount_variant(v)
    img = m.path("sq.img")
    sq = tmp_path / "sq"
    sq.mkdir()
    p = subprocess.run(["mount", "-t", "squashfs", "-o", "loop,ro", str(img), str(sq)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"loop mount of {img} failed: {p.stderr}"
    try:
        assert mounting.is_mounted(sq)
        d = subprocess.run(["diff", "-r", str(corpus.tree), str(sq)],
                           capture_output=True, text=True, timeout=120)
        assert d.returncode == 0, f"diff -r tree squashfs-through-jigdoofus:\n{d.stdout[:3000]}"
    finally:
        u = subprocess.run(["umount", str(sq)], capture_output=True, text=True, timeout=60)
    assert u.returncode == 0, u.stderr
    assert not mounting.is_mounted(sq)
    deadline = time.time() + 10  # the loop device is released asynchronously
    while True:
        loops = subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True)
        if not loops.stdout.strip() or time.time() > deadline:
            break
        time.sleep(0.2)
    assert loops.stdout.strip() == "", f"loop device left attached: {loops.stdout}"
