"""Serving a mount the way contrib/ says, with the real servers.

* nginx (contrib/nginx/jigdoofus-images.conf, included verbatim) with its
  worker running as www-data, as in production, in front of a mount made
  with -o allow_other: HEAD, a full GET, many parallel byte ranges, a
  multi-range request, revalidation by ETag, the listing; every byte equal
  to the original image. The status file is not served, and a mount made
  without allow_other answers 403 (the step the recipe documents).
* A site cache (contrib/squid/jigdoofus.conf, included verbatim in a real
  Squid): two mounts with separate caches, started with --proxy, read the
  image at the same time; the mirror's access log shows every slice
  requested once, and both images are bit-exact.
* apt-cacher-ng named as the mirror in its URL form (--mirror
  Debian=http://ACNG/HOST:PORT/), two mounts reading one after the other:
  the same, with the .jigdo and template fetched from where they are
  published.
"""

import concurrent.futures
import hashlib
import http.client
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

from itlib import http as ithttp

REPO = Path(__file__).resolve().parents[2]
NGINX_SNIPPET = REPO / "contrib" / "nginx" / "jigdoofus-images.conf"
SQUID_SNIPPET = REPO / "contrib" / "squid" / "jigdoofus.conf"
VID = "xorriso-sha256-gzip"
WORKER_USER = "www-data"


@pytest.fixture
def public_dir():
    """A directory nginx's unprivileged worker can traverse (the test's
    tmp_path is root's 0700)."""
    d = Path(tempfile.mkdtemp(prefix="jigdoofus-serve-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def request(port, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_nginx_recipe_serves_the_mount_byte_exact(corpus, public_dir, jig, net):
    v = corpus.variant(VID)
    image = v.images[0]
    original = image.iso.read_bytes()
    size = len(original)
    shared = jig.mount([v.jigdo], extra=v.local_args() + ["--offline", "-o", "allow_other"],
                       mountpoint=public_dir / "shared")
    private = jig.mount([v.jigdo], extra=v.local_args() + ["--offline"],
                        mountpoint=public_dir / "private")
    server = f"""\
        location /images/ {{
            alias {shared.mountpoint}/;
            include {NGINX_SNIPPET};
        }}
        location /private/ {{
            alias {private.mountpoint}/;
            include {NGINX_SNIPPET};
        }}"""
    ng = net.nginx(public_dir, server=server, worker_user=WORKER_USER)
    url = f"/images/{image.name}"

    status, head, body = request(ng.port, "HEAD", url)
    assert status == 200 and body == b""
    assert int(head["content-length"]) == size
    assert head["accept-ranges"] == "bytes"
    assert head["cache-control"] == "public, max-age=86400"
    etag = head["etag"]
    assert etag and "last-modified" in head

    status, _, body = request(ng.port, "GET", url)
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(original).hexdigest()

    # Many clients at once, each asking for ranges (iPXE, installers).
    rng = random.Random(7)
    ranges = [(0, 0), (size - 1, size - 1), (0, size - 1)]
    for _ in range(120):
        start = rng.randrange(size)
        ranges.append((start, min(size - 1, start + rng.choice([1, 511, 4096, 65535, 1 << 20, 3 << 20]))))

    def fetch(r):
        st, h, b = request(ng.port, "GET", url, {"Range": f"bytes={r[0]}-{r[1]}"})
        return r, st, h.get("content-range"), b

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for (a, b), st, content_range, data in pool.map(fetch, ranges):
            assert st == 206, (a, b, st)
            assert content_range == f"bytes {a}-{b}/{size}"
            assert data == original[a:b + 1], f"bytes {a}-{b} differ"

    status, head, body = request(ng.port, "GET", url, {"Range": "bytes=0-99,4096-8191"})
    assert status == 206 and head["content-type"].startswith("multipart/byteranges")
    assert original[0:100] in body and original[4096:8192] in body

    status, _, body = request(ng.port, "GET", url, {"If-None-Match": etag})
    assert status == 304 and body == b""

    status, _, listing = request(ng.port, "GET", "/images/")
    assert status == 200 and image.name.encode() in listing
    assert b".jigdoofus-status" not in listing
    status, _, _ = request(ng.port, "GET", "/images/.jigdoofus-status")
    assert status == 404

    # Without allow_other the worker (www-data) may not read the mount.
    status, _, _ = request(ng.port, "GET", f"/private/{image.name}")
    assert status == 403


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_squid_recipe_fetches_each_slice_once_for_two_mounts(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    want = hashlib.sha256(v.images[0].iso.read_bytes()).hexdigest()
    site = net.site()
    mirror = net.nginx(site.root)
    path, name = site.publish(v, [f"Debian={mirror.url}"])
    squid = net.squid(SQUID_SNIPPET)
    # As systemd would start them: no proxy variables, --proxy instead; the
    # .jigdo and template come through Squid too.
    env = ithttp.no_proxy_env()
    mounts = [jig.mount([mirror.url.rstrip("/") + path], cache_dir=tmp_path / f"cache{i}",
                        extra=["--proxy", squid.url], env=env) for i in (1, 2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sums = list(pool.map(lambda m: sha256_of(m.path(name)), mounts))
    assert sums == [want, want]

    pool_requests = ithttp.requested_pool_paths(mirror.requests())
    assert pool_requests, "no slice was fetched from the mirror"
    twice = {p: n for p, n in pool_requests.items() if n != 1}
    assert not twice, f"slices fetched from the mirror more than once: {twice}"
    # Both mounts asked Squid for every slice: the second got them from it.
    proxied = [ln for ln in squid.log_lines() if "/pool/" in ln]
    assert len(proxied) >= 2 * len(pool_requests), proxied[:5]
    assert any("HIT" in ln for ln in proxied), proxied[:5]


def test_apt_cacher_ng_as_mirror_fetches_each_slice_once(corpus, jig, net, tmp_path):
    v = corpus.variant(VID)
    want = hashlib.sha256(v.images[0].iso.read_bytes()).hexdigest()
    site = net.site()
    mirror = net.nginx(site.root, low_port=True)  # apt-cacher-ng 3.7 cannot reach ports above 32767
    path, name = site.publish(v, [f"Debian={mirror.url}"])
    acng = net.apt_cacher_ng(mirror.port)
    env = ithttp.no_proxy_env()
    mounts = [jig.mount([mirror.url.rstrip("/") + path], cache_dir=tmp_path / f"cache{i}",
                        extra=["--mirror", f"Debian={acng.url_for(mirror.url)}"], env=env) for i in (1, 2)]
    # One after the other: apt-cacher-ng has no equivalent of Squid's
    # collapsed_forwarding (mounts asking for a slice at the same moment
    # may each cause a request to the mirror).
    assert [sha256_of(m.path(name)) for m in mounts] == [want, want]
    pool_requests = ithttp.requested_pool_paths(mirror.requests())
    assert pool_requests, "no slice was fetched from the mirror"
    twice = {p: n for p, n in pool_requests.items() if n != 1}
    assert not twice, f"slices fetched from the mirror more than once: {twice}"
    for m in mounts:  # every slice came through apt-cacher-ng, none from the mirror directly
        downloads = m.status()["mirror"]
        assert downloads["downloads_failed"] == 0, downloads
