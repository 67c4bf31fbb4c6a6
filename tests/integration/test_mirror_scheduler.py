"""Mirrors chosen by what they deliver, on a simulated internet.

Three mirrors of the same site, each behind bench/delay_proxy.py with its
own round-trip time and uplink cap (shared by its connections), listed in
the .jigdo slowest first:

* a cold read is bit-exact, and most bytes come from the fast mirror, few
  from the slow one (the status file's per-server share); the scores are
  kept in CACHE_DIR/servers.json, fast above slow;
* --try-first / --try-last weights as jigdo defines them win over speed;
* a mirror that stalls now and then, listed first, never holds a reader
  for a stall: its lanes are taken over or raced by the steady one, and
  it is backed off briefly;
* --mirror-list LABEL=FILE (plain and jigdo forms) and LABEL=URL add the
  servers of a .jigdo that has none for the label; a fetched list is kept
  and used when its URL is gone.
"""

import json
import subprocess
from pathlib import Path

import time

from itlib import checks, http, mounting

VID = "xorriso-sha256-gzip"
ENV = http.no_proxy_env()

SLOW = dict(delay_ms=40, rate=150_000)
MID = dict(delay_ms=20, rate=800_000)
FAST = dict(delay_ms=10, rate=6_000_000)


def mirrors(net, site, shapes=(SLOW, MID, FAST)):
    ng = net.nginx(site.root)
    return [net.shaped_mirror(ng.port, **shape) for shape in shapes], ng


def share_by_port(status):
    """{port: share of the bytes} of the servers that sent any."""
    out = {}
    for sv in status["transfers"]["servers"]:
        if sv["share"] > 0:
            out[int(sv["server"].rsplit(":", 1)[1])] = sv["share"]
    return out


def read_whole(m, v, name):
    (img,) = v.images
    assert checks.sha256_file(m.path(name)) == checks.sha256_file(img.iso)


def test_the_fast_mirror_serves_most_though_listed_last(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site = net.site()
    (slow, mid, fast), _ = mirrors(net, site)
    path, name = site.publish(v, [f"Debian={m.url}" for m in (slow, mid, fast)])
    cache = tmp_path / "cache"
    m = jig.mount([fast.url + path.lstrip("/")], cache_dir=cache, env=ENV)
    read_whole(m, v, name)
    shares = share_by_port(m.status())
    named = {"slow": shares.get(slow.port, 0), "mid": shares.get(mid.port, 0), "fast": shares.get(fast.port, 0)}
    # Every mirror is kept busy in proportion to what it delivers (the
    # fast one has 86% of the link): the slow one, listed first, carries
    # little, the fast one most.
    assert named["fast"] >= 0.4 and named["slow"] <= 0.25 and named["fast"] > 2 * named["slow"], named
    pids = mounting.daemon_pids(m.mountpoint)
    m.unmount()
    deadline = time.time() + 30  # the daemon saves the scores as it exits
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    saved = json.loads((cache / "servers.json").read_text())["servers"]
    rate = {int(k.rsplit(":", 1)[1]): v["per_connection_bps"] for k, v in saved.items()}
    assert rate[fast.port] > rate.get(slow.port, 0), rate
    assert oct((cache / "servers.json").stat().st_mode & 0o777) == "0o600"


def test_a_stalling_mirror_never_holds_a_reader_for_a_stall(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site = net.site()
    # Sends for 0.5 s, then nothing for 5 s, over and over; listed first,
    # so it gets the first slices: whenever the read starts, lanes are
    # caught in a stall (the read lasts longer than a sending window).
    stalling = dict(delay_ms=10, rate=6_000_000, stall_every=5.5, stall_for=5.0)
    steady = dict(delay_ms=20, rate=2_500_000)
    (flaky, good), _ = mirrors(net, site, (stalling, steady))
    path, name = site.publish(v, [f"Debian={m.url}" for m in (flaky, good)])
    m = jig.mount([good.url + path.lstrip("/")], cache_dir=tmp_path / "cache", env=ENV)
    (img,) = v.images
    want = img.iso.read_bytes()
    got, longest, times = bytearray(), 0.0, []
    with open(m.path(name), "rb", buffering=0) as f:
        while True:
            t0 = time.monotonic()
            chunk = f.read(1 << 20)
            longest = max(longest, time.monotonic() - t0)
            times.append(round(time.monotonic() - t0, 2))
            if not chunk:
                break
            got += chunk
    assert bytes(got) == want
    status = m.status()
    st = status["mirror"]
    # The stalling mirror took part: it sent bytes, or a lane of it was
    # caught in a stall and moved (which of the two depends on when the
    # read starts within its cycle).
    assert st["hedges"] >= 1 or share_by_port(status).get(flaky.port, 0) > 0, (st, share_by_port(status))
    # A lane silent for 1 s is taken over (and its server backed off for
    # the next slices): no read waits out a 5 s stall.
    assert longest < 4.5, (longest, times, st)


def test_try_first_and_try_last_weights_come_before_speed(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site = net.site()
    (slow, mid, fast), _ = mirrors(net, site, (SLOW, dict(delay_ms=20, rate=2_500_000), FAST))
    # mid is preferred by the .jigdo: it serves everything, fast nothing.
    path, name = site.publish(v, [f"Debian={fast.url} --try-last", f"Debian={mid.url} --try-first=2",
                                  f"Debian={slow.url}"])
    m = jig.mount([mid.url + path.lstrip("/")], cache_dir=tmp_path / "cache", env=ENV)
    read_whole(m, v, name)
    shares = share_by_port(m.status())
    assert shares.get(mid.port, 0) == 1.0, shares


def test_mirror_lists_add_servers(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    site = net.site()
    (slow, mid, fast), ng = mirrors(net, site)
    # The .jigdo names no server that has the files.
    path, name = site.publish(v, ["Debian=http://127.0.0.1:9/nothing/"])
    jigdo_url = ng.url + path.lstrip("/")
    plain = tmp_path / "plain.list"
    plain.write_text(f"# my mirrors\n{slow.url}\n{fast.url}\n")
    m = jig.mount([jigdo_url], cache_dir=tmp_path / "c1", env=ENV, extra=["--mirror-list", f"Debian={plain}"])
    read_whole(m, v, name)
    assert "ignored" not in m.stderr
    m.unmount()

    jigdo_form = site.root / "mirrors.jigdo"
    jigdo_form.write_text(f"Non-US={slow.url}  # not this label\nDebian={fast.url}   # DE\n")
    list_url = ng.url + "mirrors.jigdo"
    cache = tmp_path / "c2"
    m = jig.mount([jigdo_url], cache_dir=cache, env=ENV, extra=["--mirror-list", f"Debian={list_url}"])
    read_whole(m, v, name)
    assert set(share_by_port(m.status())) == {fast.port}
    m.unmount()

    # The list's URL is gone: the kept copy is used (a new image cache,
    # the same documents).
    jigdo_form.unlink()
    for p in cache.glob("*.mdb"):
        p.unlink()
    m = jig.mount([jigdo_url], cache_dir=cache, env=ENV, extra=["--mirror-list", f"Debian={list_url}"])
    read_whole(m, v, name)
    assert set(share_by_port(m.status())) == {fast.port}
    m.unmount()

    # A list that gives nothing is said, and the mount still comes up.
    bad = tmp_path / "bad.list"
    bad.write_text("ftp-less garbage\n")
    m = jig.mount([jigdo_url], cache_dir=tmp_path / "c3", env=ENV, extra=["--mirror-list", f"Debian={bad}"])
    assert f"{bad}: no http, https or ftp server for label 'Debian' in this list; --mirror-list Debian ignored" \
        in m.stderr


def test_a_far_mirror_gets_more_connections_unless_jobs_bounds_them(corpus, jig, net, tmp_path):
    # 300 ms away, no uplink cap: each small slice waits a round trip for
    # its first byte and is sent in a moment, so 16 connections would leave
    # the mirror idle most of the time. Without --jobs it is given more;
    # with --jobs they stay within it.
    v = corpus.variant(VID)
    site = net.site()
    (far,), _ = mirrors(net, site, shapes=(dict(delay_ms=300, rate=0),))
    path, name = site.publish(v, [f"Debian={far.url}"])

    def limit(status):
        (sv,) = [s for s in status["transfers"]["servers"] if int(s["server"].rsplit(":", 1)[1]) == far.port]
        return sv["connections"]

    m = jig.mount([far.url + path.lstrip("/")], cache_dir=tmp_path / "auto", env=ENV)
    read_whole(m, v, name)
    assert limit(m.status()) > 16
    m.unmount()
    m = jig.mount([far.url + path.lstrip("/")], cache_dir=tmp_path / "bounded", env=ENV, extra=["--jobs", "4"])
    read_whole(m, v, name)
    assert limit(m.status()) == 4
    m.unmount()


def test_a_prefetch_job_gets_more_downloads_from_a_far_mirror_too(corpus, jig, net, tmp_path):
    # `jigdoofus-ctl prefetch` fetches every slice through the same budget
    # as the read-ahead: from a mirror 300 ms away, more than the 16 of the
    # base are in flight at once before the job ends (that it gets every
    # slice, test_ctl shows).
    v = corpus.variant(VID)
    site = net.site()
    (far,), _ = mirrors(net, site, shapes=(dict(delay_ms=300, rate=0),))
    path, name = site.publish(v, [f"Debian={far.url}"])
    m = jig.mount([far.url + path.lstrip("/")], cache_dir=tmp_path / "cache", env=ENV)
    job = subprocess.Popen([mounting.ctl_binary(), "prefetch", str(m.mountpoint)], env=ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    most = 0
    while job.poll() is None:
        most = max(most, len(m.status()["transfers"]["in_flight"]))
        time.sleep(0.05)
    out, err = job.communicate()
    assert job.returncode == 0, out + err
    assert f"{name}: complete" in out, out
    assert most > 16, f"at most {most} downloads at once"
