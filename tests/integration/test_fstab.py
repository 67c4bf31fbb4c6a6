"""Mounting the way /etc/fstab does it: mount(8) -> mount.fuse3 ->
`jigdoofus SRC DIR -o ...`,
and the `-o name=value` form of every long option given to jigdoofus
directly, with the generic options mount(8) passes along."""

import os
import subprocess

from conftest import expected_names, listing_without_status
from itlib import mounting
from itlib.checks import sha256_file

VID = "xorriso-sha256-gzip"


def assert_serves(m, v):
    assert listing_without_status(m.mountpoint) == expected_names(v)
    im = v.images[0]
    assert sha256_file(m.path(im.name)) == sha256_file(im.iso)


def mount_helper_run(cmd, jig, tmp_path, mnt, env=None):
    rc, out, err = mounting.run_captured(cmd, tmp_path / "logs", mounting.MOUNT_TIMEOUT_S,
                                         env=env)
    m = jig.adopt(mnt)
    assert rc == 0, f"{' '.join(map(str, cmd))}\n -> exit {rc}: {err}"
    assert (mounting.fuse_type_of(mnt) or "").startswith("fuse"), mounting.fuse_type_of(mnt)
    return m


def test_mount_t_fuse_with_program_path(corpus, jig, tmp_path):
    # mount(8) runs its helpers with PATH removed, so the fstab form that
    # names the program by path is the one a build tree can test:
    #   /path/to/jigdoofus#/srv/x.jigdo  /mnt/x  fuse  local=...,cache_dir=...
    v = corpus.variant(VID)
    mnt = jig.mountpoint()
    cmd = ["mount", "-t", "fuse", f"{mounting.binary()}#{v.jigdo}", str(mnt), "-o",
           f"local=Debian={corpus.tree},cache_dir={tmp_path / 'cache'}"]
    m = mount_helper_run(cmd, jig, tmp_path, mnt)
    assert_serves(m, v)


def test_mount_fuse3_type_jigdoofus(corpus, jig, tmp_path):
    # exactly what `mount -t fuse.jigdoofus SRC DIR -o OPTS` makes mount(8)
    # run; with the build directory first on PATH (an installed jigdoofus is
    # found in /usr/bin or /usr/local/bin)
    v = corpus.variant(VID)
    mnt = jig.mountpoint()
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(mounting.binary()) + ":" + env.get("PATH", "/usr/bin:/bin")
    cmd = ["mount.fuse3", str(v.jigdo), str(mnt), "-t", "jigdoofus", "-o",
           f"rw,local=Debian={corpus.tree},cache_dir={tmp_path / 'cache'}"]
    m = mount_helper_run(cmd, jig, tmp_path, mnt, env=env)
    assert_serves(m, v)


def test_dash_o_form(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    m = jig.mount([v.jigdo], cache_dir=None, extra=[
        "-o", f"local=Debian={corpus.tree},cache_dir={tmp_path / 'cache'}"])
    assert_serves(m, v)
    assert (tmp_path / "cache").is_dir(), "cache_dir= was not used"


def test_dash_o_generic_mount_options_are_accepted(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    m = jig.mount([v.jigdo], cache_dir=None, extra=[
        "-o", "rw,dev,suid,exec,auto,nouser,_netdev,x-systemd.automount",
        "-o", f"local=Debian={corpus.tree},cache_dir={tmp_path / 'cache'},offline,jobs=2,"
              "cache_size=64M"])
    assert_serves(m, v)
    # read-only whatever `rw` said
    try:
        fd = os.open(m.path(v.images[0].name), os.O_WRONLY)
        os.close(fd)
        raise AssertionError("opened an image for writing")
    except OSError as e:
        assert e.errno in (30, 13, 1), e  # EROFS, EACCES, EPERM
    assert "ro" in subprocess.run(["findmnt", "-no", "OPTIONS", str(m.mountpoint)],
                                  capture_output=True, text=True).stdout.split(",")
