"""The chunk cache under field conditions: bytes that rot on disk, and a
disk that fills.

* Bit rot: fill the cache with a cold HTTP read, unmount, flip one byte of
  a cached package inside data.mdb, remount with the mirror reachable: the
  whole image is still bit-exact (the damaged slice is detected by its
  block checksum, dropped, counted and fetched again within the same
  read). With --offline instead, reads of that slice are EIO (never the
  flipped byte), everything else is served and the mount stays up.
* A full disk: --cache-dir on a tmpfs far smaller than the image with
  --cache-size 4G, the image read cold over HTTP in 1 MiB preads: every
  block bit-exact, no EIO, no short read; the status file shows the disk
  filling (no_space_events, a lowered effective bound, evictions); the
  LMDB environment stays valid (mdb_stat).
"""

import os
import subprocess

from itlib import http, mounting
from itlib.checks import file_extents, pread_full, read_in_child, sha256_bytes, sha256_file

ENV = http.no_proxy_env()
VID = "xorriso-sha256-gzip"
HANG_GUARD_S = 60


def flip_in_file(path, needle, at):
    """Flips one bit of the byte `at` bytes into the first copy of `needle`."""
    data = bytearray(path.read_bytes())
    pos = data.find(needle)
    assert pos >= 0, "the cached package's bytes are not in data.mdb"
    assert data.find(needle, pos + 1) < 0, "the package is stored twice"
    with open(path, "r+b") as f:
        f.seek(pos + at)
        f.write(bytes([data[pos + at] ^ 0x10]))


def cached_victim(iso, tree):
    """A package of 100-600 KB: (offset, length, relpath)."""
    ext = [e for e in file_extents(iso, tree) if 100_000 <= e[1] <= 600_000]
    assert ext
    return ext[0]


def test_flipped_byte_in_the_cache_is_refetched_never_served(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    iso = v.images[0].iso
    iso_bytes = iso.read_bytes()
    site, fs, path, name = net.published_behind_fault_server(v)
    url = fs.url.rstrip("/") + path
    m = jig.mount([url], env=ENV)
    assert sha256_file(m.path(name)) == sha256_file(iso)   # fills the cache
    m.unmount()

    off, ln, rel = cached_victim(iso, corpus.tree)
    content = (corpus.tree / rel).read_bytes()
    flip_at = ln // 2 + 123
    flip_in_file(jig.cache_dir / "data.mdb", content[flip_at - 64:flip_at + 64], 64)

    # Offline: the damaged slice is EIO, its neighbours and literals are fine.
    m = jig.mount([url], extra=["--offline"], env=ENV)
    img = m.path(name)
    assert read_in_child(img, off + flip_at - 10, 100, HANG_GUARD_S) == ("errno", 5)
    assert read_in_child(img, 0, 32768, HANG_GUARD_S) == ("ok", 32768, sha256_bytes(iso_bytes[:32768]))
    st = m.status()
    assert st["cache"]["corrupt_dropped"] == 1, st["cache"]
    assert mounting.is_mounted(m.mountpoint)
    m.unmount()

    # Online: the same read gets the right bytes, fetched anew.
    fs.reset()
    m = jig.mount([url], env=ENV)
    img = m.path(name)
    assert sha256_file(img) == sha256_file(iso)
    assert fs.requests().get("/" + rel) == 1, fs.requests()
    st = m.status()
    assert st["mirror"]["downloads_ok"] == 1, st["mirror"]
    m.unmount()


def test_full_cache_disk_serves_every_byte(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    iso = v.images[0].iso
    size = os.stat(iso).st_size
    small = tmp_path / "small-disk"
    small.mkdir()
    disk_bytes = 3 << 20
    assert disk_bytes < size // 2
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_bytes}", "tmpfs", str(small)], check=True)
    try:
        site, fs, path, name = net.published_behind_fault_server(v)
        cache = small / "cache"
        m = mounting.mount_foreground([fs.url.rstrip("/") + path], jig.mountpoint(), cache_dir=cache,
                                      extra=["--cache-size", "4G"], workdir=tmp_path / "logs", env=ENV)
        jig.mounts.append(m)
        img = m.path(name)
        bad = []
        with open(iso, "rb") as orig:
            fd = os.open(img, os.O_RDONLY)
            try:
                for off in range(0, size, 1 << 20):
                    want = min(1 << 20, size - off)
                    try:
                        got = os.pread(fd, want, off)    # one pread: a short one is a failure
                    except OSError as e:
                        bad.append((off, f"errno {e.errno}"))
                        continue
                    if len(got) != want:
                        bad.append((off, f"short: {len(got)} of {want}"))
                    elif got != os.pread(orig.fileno(), want, off):
                        bad.append((off, "wrong bytes"))
            finally:
                os.close(fd)
        assert not bad, f"{len(bad)} bad 1 MiB blocks: {bad[:5]}\n{m.log_text()[-3000:]}"
        st = m.status()
        c = st["cache"]
        print(f"full disk: {c}, mirror {st['mirror']}")
        assert c["no_space_events"] >= 1, c
        assert c["effective_bound"] < c["capacity"], c
        assert st["fs"]["failures"]["eio-no-space"] == 0
        assert sha256_file(img) == sha256_file(iso)       # again, from cache and memory
        m.unmount()
        p = subprocess.run(["mdb_stat", "-e", str(cache)], capture_output=True, text=True)
        assert p.returncode == 0, f"mdb_stat after the disk filled: {p.stderr}"
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
