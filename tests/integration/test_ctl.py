"""jigdoofus-ctl against real mounts, and jigdoofus-cat -o.

* status during a slow cold read over HTTP (a throttled mirror): downloads
  in flight with their bytes, a rate, available + missing == size; after
  the full read, missing == 0.
* prefetch, then an --offline remount reads the whole image with zero
  requests to the mirror.
* prefetch interrupted (SIGINT, as Ctrl-C) and run again: it completes, and
  no slice was fetched from the mirror twice.
* verify: 0 on a good image; non-zero naming the image when the local tree
  holds one damaged package.
* plan on a partly local image: local, cached and to download add up with
  the template bytes to the size; a cached image plans no download.
* another user is refused; a directory that is not a mount is refused; an
  unprivileged user controls their own mount, and root can too.
* jigdoofus-cat -o FILE: FILE.part renamed at the end; an interrupted run
  leaves only FILE.part; an image is never written to a terminal.
* Said at mount time: a label nothing can serve (--offline, no --local, an
  empty cache) gets one warning naming it; offline, a failed read names
  the local paths tried. --log-file receives the log.
"""

import json
import os
from pathlib import Path
import pty
import shutil
import signal
import subprocess
import threading
import time

from itlib import checks, http, mounting

VID = "xorriso-sha256-gzip"
ENV = http.no_proxy_env()
TIMEOUT_S = 120


def ctl(*args, user=None, timeout=TIMEOUT_S):
    cmd = [mounting.ctl_binary()] + [str(a) for a in args]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def status(mnt):
    r = ctl("status", mnt, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def image_status(mnt, name):
    s = status(mnt)
    (img,) = [i for i in s["images"] if i["name"] == name]
    assert img["available_bytes"] + img["missing_bytes"] == img["size"], img
    return s, img


def mount_url(jig, site_url, path, tmp_path, extra=()):
    return jig.mount([site_url.rstrip("/") + path], cache_dir=tmp_path / "cache", extra=list(extra), env=ENV)


def test_status_during_a_slow_cold_read(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site, fs, path, name = net.published_behind_fault_server(v)
    fs.set_fault("/pool/*", "slow:400000")
    m = mount_url(jig, fs.url, path, tmp_path, ["--jobs", "2"])
    _, before = image_status(m.mountpoint, name)
    assert before["missing_bytes"] > 0 and before["slices_available"] == 0
    digest = {}
    reader = threading.Thread(target=lambda: digest.update(sha=checks.sha256_file(m.path(name))))
    reader.start()
    seen_in_flight = seen_rate = False
    deadline = time.time() + TIMEOUT_S
    while reader.is_alive() and time.time() < deadline:
        s, img = image_status(m.mountpoint, name)
        t = s["transfers"]
        if any(f["bytes"] > 0 for f in t["in_flight"]):
            seen_in_flight = True
        if t["servers"]:
            assert abs(sum(sv["share"] for sv in t["servers"]) - 1.0) < 1e-6 or t["bytes"] == 0, t
        if t["rate_bps"] > 0 and t["servers"] and t["servers"][0]["rate_bps"] > 0:
            seen_rate = True
            if img["missing_bytes"] > 0:
                assert img["seconds_left"] > 0, img
        time.sleep(0.3)
    reader.join(TIMEOUT_S)
    assert digest.get("sha") == checks.sha256_file(v.images[0].iso)
    assert seen_in_flight, "no download in flight was ever shown with bytes"
    assert seen_rate, "no download rate was ever shown"
    _, after = image_status(m.mountpoint, name)
    assert after["missing_bytes"] == 0 and after["available_bytes"] == after["size"]
    text = ctl("status", m.mountpoint)
    assert text.returncode == 0 and name in text.stdout and "available" in text.stdout, text.stdout


def test_prefetch_then_offline_remount_makes_no_request(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site = net.site()
    ng = net.nginx(site.root)
    path, name = site.publish(v, [f"Debian={ng.url}"])
    m = mount_url(jig, ng.url, path, tmp_path)
    r = ctl("prefetch", m.mountpoint)
    assert r.returncode == 0, r.stderr
    assert f"{name}: complete" in r.stdout, r.stdout
    _, img = image_status(m.mountpoint, name)
    assert img["missing_bytes"] == 0
    m.unmount()
    before = sum(http.requested_pool_paths(ng.requests()).values())
    assert before > 0
    off = mount_url(jig, ng.url, path, tmp_path, ["--offline"])
    assert checks.sha256_file(off.path(name)) == checks.sha256_file(v.images[0].iso)
    assert sum(http.requested_pool_paths(ng.requests()).values()) == before


def test_prefetch_interrupted_then_resumed_fetches_nothing_twice(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site, fs, path, name = net.published_behind_fault_server(v)
    fs.set_fault("/pool/*", "slow:300000")
    m = mount_url(jig, fs.url, path, tmp_path, ["--jobs", "2"])
    p = subprocess.Popen([mounting.ctl_binary(), "prefetch", str(m.mountpoint)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        _, img = image_status(m.mountpoint, name)
        if img["slices_available"] >= 2:
            break
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)  # Ctrl-C
    p.wait(TIMEOUT_S)
    assert p.returncode != 0
    _, partial = image_status(m.mountpoint, name)
    assert 0 < partial["missing_bytes"] < partial["size"], partial
    fs.clear_faults()
    r = ctl("prefetch", m.mountpoint)
    assert r.returncode == 0, r.stderr
    _, done = image_status(m.mountpoint, name)
    assert done["missing_bytes"] == 0
    twice = {k: n for k, n in http.requested_pool_paths(fs.requests()).items() if n != 1}
    assert not twice, f"fetched more than once: {twice}"
    assert checks.sha256_file(m.path(name)) == checks.sha256_file(v.images[0].iso)


def test_verify_good_and_damaged(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    name = v.images[0].name
    good = jig.mount_variant(v)
    r = ctl("verify", good.mountpoint)
    assert r.returncode == 0, r.stderr
    assert "matches the template" in r.stdout, r.stdout

    # A copy of the tree with one package damaged (same size, one byte).
    (label, tree), = v.local.items()
    damaged = tmp_path / "damaged"
    shutil.copytree(tree, damaged)
    victim = max((p for p in damaged.rglob("*.deb")), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = jig.mount([v.jigdo], extra=["--local", f"{label}={damaged}", "--offline"],
                    cache_dir=tmp_path / "cache-bad")
    r = ctl("verify", bad.mountpoint, name)
    assert r.returncode != 0
    assert name in r.stderr, r.stderr


def test_plan_partly_local_then_cached(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    (label, tree), = v.local.items()
    partial = tmp_path / "partial"
    shutil.copytree(tree, partial)
    debs = sorted(partial.rglob("*.deb"))
    for p in debs[::2]:
        p.unlink()
    cache = tmp_path / "plan-cache"
    r = ctl("plan", "--local", f"{label}={partial}", "--cache-dir", cache, "--offline", v.jigdo, "--json")
    assert r.returncode == 0, r.stderr
    (img,) = json.loads(r.stdout)["images"]
    parts = img["literal_bytes"] + img["local_bytes"] + img["cached_bytes"] + img["download_bytes"]
    assert parts == img["size"], img
    assert img["local_bytes"] > 0 and img["download_bytes"] > 0 and img["cached_bytes"] == 0, img
    # Everything local: nothing to download.
    r = ctl("plan", "--local", f"{label}={tree}", "--cache-dir", cache, "--offline", v.jigdo, "--json")
    (img,) = json.loads(r.stdout)["images"]
    assert img["download_bytes"] == 0 and img["local_bytes"] + img["literal_bytes"] == img["size"], img
    human = ctl("plan", "--local", f"{label}={partial}", "--cache-dir", cache, "--offline", v.jigdo)
    assert human.returncode == 0 and "download" in human.stdout


def test_plan_counts_the_cache(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site = net.site()
    ng = net.nginx(site.root)
    path, name = site.publish(v, [f"Debian={ng.url}"])
    url = ng.url.rstrip("/") + path
    r = ctl("plan", "--cache-dir", tmp_path / "cache", url, "--json")
    (img,) = json.loads(r.stdout)["images"]
    assert img["download_bytes"] == img["size"] - img["literal_bytes"], img
    m = mount_url(jig, ng.url, path, tmp_path)
    assert ctl("prefetch", m.mountpoint).returncode == 0
    m.unmount()
    r = ctl("plan", "--cache-dir", tmp_path / "cache", "--offline", url, "--json")
    assert r.returncode == 0, r.stderr
    (img,) = json.loads(r.stdout)["images"]
    assert img["download_bytes"] == 0 and img["cached_bytes"] + img["literal_bytes"] == img["size"], img


def test_other_users_and_non_mounts_are_refused(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    m = jig.mount_variant(v)
    os.chmod(m.mountpoint.parent, 0o755)
    r = ctl("status", m.mountpoint, user="nobody")
    assert r.returncode == 1
    assert "permission denied" in r.stderr or "Permission denied" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = ctl("status", tmp_path)
    assert r.returncode == 1 and "not a mountpoint" in r.stderr, r.stderr
    r = ctl("frobnicate", m.mountpoint)
    assert r.returncode == 2


def test_cat_output_file_is_renamed_only_when_complete(corpus, tmp_path):
    v = corpus.variant(VID)
    out = tmp_path / "out.iso"
    cmd = [mounting.cat_binary(), "--offline", "--cache-dir", str(tmp_path / "cache")] + v.local_args() + \
        [str(v.jigdo), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=ENV)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == v.images[0].iso.read_bytes()
    assert not (tmp_path / "out.iso.part").exists()

    # Without the tree (and offline) the first slice fails: only the .part stays.
    out2 = tmp_path / "broken.iso"
    r = subprocess.run([mounting.cat_binary(), "--offline", "--cache-dir", str(tmp_path / "empty"),
                        str(v.jigdo), "-o", str(out2)], capture_output=True, text=True,
                       timeout=TIMEOUT_S, env=ENV)
    assert r.returncode == 1 and "broken.iso.part" in r.stderr, r.stderr
    assert not out2.exists() and (tmp_path / "broken.iso.part").exists()

    # Never to a terminal.
    master, slave = pty.openpty()
    try:
        r = subprocess.run(cmd[:-2], stdout=slave, stderr=subprocess.PIPE, text=True,
                           timeout=TIMEOUT_S, env=ENV)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 1 and "terminal" in r.stderr, r.stderr


def test_mount_warns_about_labels_nothing_can_serve(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    (label, tree), = v.local.items()
    m = jig.mount([v.jigdo], extra=["--offline"], cache_dir=tmp_path / "empty-cache")
    warnings = [ln for ln in m.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1, m.stderr
    assert f"label '{label}'" in warnings[0] and "--offline" in warnings[0] and f"--local {label}=DIR" in warnings[0]
    served = jig.mount_variant(v)  # --local: nothing to say
    assert "warning" not in served.stderr, served.stderr

    # Offline, a failed read says where the local copies were looked for.
    empty = tmp_path / "empty-tree"
    empty.mkdir()
    r = subprocess.run([mounting.cat_binary(), "--offline", "--cache-dir", str(tmp_path / "empty-cache"),
                        "--local", f"{label}={empty}", str(v.jigdo)], capture_output=True, text=True,
                       timeout=TIMEOUT_S, env=ENV)
    assert r.returncode == 1
    assert "not in the cache" in r.stderr and str(empty) in r.stderr, r.stderr


def test_log_file(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    log = tmp_path / "logs" / "jigdoofus.log"
    m = jig.mount([v.jigdo], extra=v.local_args() + ["--offline", "-o", f"log_file={log}"])
    m.unmount()
    deadline = time.time() + 10  # the daemon writes its last line as it exits
    while f"unmounted {m.mountpoint}" not in log.read_text() and time.time() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert f"mounted 1 image(s) on {m.mountpoint}" in text and f"unmounted {m.mountpoint}" in text, text


def test_unprivileged_user_and_root_control_the_users_mount(corpus, tmp_path):
    v = corpus.variant(VID)
    (label, tree), = v.local.items()
    import tempfile
    home = Path(tempfile.mkdtemp(prefix="jigdoofus-user-"))
    fuse_mode = os.stat("/dev/fuse").st_mode & 0o777
    mnt = home / "mnt"
    try:
        os.chmod(home, 0o755)
        mnt.mkdir()
        shutil.copy(v.jigdo, home / "img.jigdo")
        shutil.copy(Path(v.jigdo).with_suffix(".template"), home / "img.template")
        for p in [home, mnt, home / "img.jigdo", home / "img.template"]:
            os.chown(p, 65534, 65534)  # nobody
        os.chmod("/dev/fuse", 0o666)  # as on a desktop (a container may have 0600)
        r = subprocess.run(["runuser", "-u", "nobody", "--", mounting.binary(), "--offline", "--cache-dir",
                            str(home / "cache"), "--local", f"{label}={tree}", str(home / "img.jigdo"), str(mnt)],
                           capture_output=True, text=True, timeout=TIMEOUT_S, env=ENV)
        assert r.returncode == 0, r.stderr
        mine = ctl("status", mnt, "--json", user="nobody")
        assert mine.returncode == 0, mine.stderr
        assert json.loads(mine.stdout)["uid"] == 65534
        as_root = ctl("verify", mnt)
        assert as_root.returncode == 0 and "matches" in as_root.stdout, as_root.stderr
        other = ctl("status", mnt, user="www-data")
        assert other.returncode == 1 and "permission denied" in other.stderr, other.stderr
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        os.chmod("/dev/fuse", fuse_mode)
        shutil.rmtree(home, ignore_errors=True)


def test_control_socket_survives_bad_requests(corpus, jig):
    import hashlib
    import socket
    v = corpus.variant(VID)
    m = jig.mount_variant(v)
    name = "jigdoofus/" + hashlib.sha256(os.path.realpath(m.mountpoint).encode()).hexdigest()[:32]

    def ask(data):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect("\0" + name)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(30)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode(errors="replace")

    assert "bad request" in ask(b"not json\n")
    assert "bad request" in ask(b'{"op": 3}\n')
    assert "unknown request" in ask(b'{"op": "format-disk"}\n')
    assert "no image named" in ask(b'{"op": "verify", "images": [1]}\n')
    assert ask(b"") == "" or "request" in ask(b"")
    assert ask(b"x" * (1 << 20)) is not None  # a line with no end: dropped
    r = ctl("status", m.mountpoint, "--json")  # still answering
    assert r.returncode == 0, r.stderr
