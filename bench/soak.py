#!/usr/bin/python3
"""bench/soak.py: a long day for one mount (issue 11). Not part of CI.

32 readers (16 sequential from random starting points, 16 random 4 KiB-1 MiB
preads) read the bench image through one mount for --minutes (default 10),
over HTTP: the .jigdo names a fault-injecting server first (it corrupts,
resets, truncates and stalls some pool files, and answers 503 now and then)
and nginx second; the cache is smaller than the image, so slices are evicted
and fetched again all along. Every byte read is compared with the original
ISO. The page cache is dropped every 10 s so that reads keep reaching the
daemon. The daemon's RSS and open files are sampled every 5 s. Exits non-zero
on any wrong byte, any failed read, or a daemon that died.

Run as root: sudo /usr/bin/python3 bench/soak.py [--minutes N] [--size-mb MB]
Uses the bench corpus in --bench-dir (built by bench/corpus.py if missing;
default 128 MB), nginx on 127.0.0.1 and tests/tools/fault_server.py.
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (Session, corpus helpers)
import corpus  # noqa: E402

FAULTS = {  # fnmatch on the request path -> fault mode; the rest is served
    "/tree/pool/main/a/*": "corrupt",
    "/tree/pool/main/b/*": "reset",
    "/tree/pool/main/c/*": "truncate",
    "/tree/pool/main/d/*": "stall:20",
    "/tree/pool/main/e/*": "flaky-3",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_sample(pid):
    rss = next((int(ln.split()[1]) for ln in open(f"/proc/{pid}/status") if ln.startswith("VmRSS")), 0)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss / 1024, fds


def reader(kind, img, iso, seed, stop, result):
    rng = random.Random(seed)
    size = os.path.getsize(iso)
    fd, ofd = os.open(img, os.O_RDONLY), os.open(iso, os.O_RDONLY)
    pos = rng.randrange(size)
    try:
        while not stop.is_set():
            if kind == "seq":
                n = min(1 << 20, size - pos)
                off = pos
                pos = 0 if pos + n >= size else pos + n
            else:
                n = rng.choice([4096, 65536, 1 << 20])
                off = rng.randrange(max(1, size - n))
            try:
                got = os.pread(fd, n, off)
            except OSError as e:
                result["errors"].append(f"{kind} {off}+{n}: errno {e.errno}")
                continue
            want = os.pread(ofd, n, off)
            result["reads"] += 1
            result["bytes"] += len(got)
            if got != want:
                result["wrong"].append(f"{kind} {off}+{n}: {len(got)} bytes, differ")
    finally:
        os.close(fd)
        os.close(ofd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--size-mb", type=int, default=128)
    ap.add_argument("--readers", type=int, default=32)
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build-bench"))
    ap.add_argument("--bench-dir", default="/var/tmp/jigdoofus-bench")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: run as root (FUSE mount, nginx)")
    os.makedirs(a.bench_dir, exist_ok=True)
    binary = os.path.join(a.build_dir, "fs", "jigdoofus")
    if not os.path.exists(os.path.join(a.build_dir, "build.ninja")):
        subprocess.run(["cmake", "-S", SRC, "-B", a.build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", a.build_dir, "-j2", "jigdoofus"], check=True, stdout=subprocess.DEVNULL)
    c = corpus.ensure(a.bench_dir, "image", corpus.build_image_corpus, a.size_mb)
    iso = os.path.join(c, "iso", "bench.iso")
    size = os.path.getsize(iso)
    s = bench.Session(a.bench_dir)
    work = os.path.join(a.bench_dir, f"soak-{os.getpid()}")
    os.makedirs(work)
    s.paths.append(work)
    try:
        www = os.path.join(work, "www")
        os.makedirs(www)
        os.symlink(os.path.join(c, "tree"), os.path.join(www, "tree"))
        shutil.copy(os.path.join(c, "bench.template"), www)
        ng_port, fs_port = free_port(), free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"user root; daemon off; worker_processes 2; pid {work}/nginx.pid;\n"
                    f"error_log {work}/nginx-error.log;\nevents {{ worker_connections 1024; }}\n"
                    f"http {{ access_log off; sendfile on; types {{ }} default_type application/octet-stream;\n"
                    f"  server {{ listen 127.0.0.1:{ng_port}; root {www}; }} }}\n")
        s.popen(["nginx", "-p", work, "-c", conf])
        faults = os.path.join(work, "faults.json")
        json.dump(FAULTS, open(faults, "w"))
        port_file = os.path.join(work, "fault.port")
        s.popen(["/usr/bin/python3", os.path.join(SRC, "tests", "tools", "fault_server.py"), "--root", www,
                 "--port", str(fs_port), "--port-file", port_file, "--faults-json", faults])
        for _ in range(500):
            if os.path.exists(port_file):
                break
            time.sleep(0.01)
        with open(os.path.join(www, "soak.jigdo"), "w") as f:
            f.write(bench.served_jigdo(os.path.join(c, "bench.jigdo"), f"http://127.0.0.1:{ng_port}/bench.template",
                                       [f"http://127.0.0.1:{fs_port}/tree/", f"http://127.0.0.1:{ng_port}/tree/"]))
        mnt = os.path.join(work, "mnt")
        os.makedirs(mnt)
        capacity = size * 2 // 5
        p = s.popen([binary, "-f", "--cache-dir", os.path.join(work, "cache"), "--cache-size", str(capacity),
                     "--fetch-timeout", "120", f"http://127.0.0.1:{ng_port}/soak.jigdo", mnt])
        s.mounted(mnt, p)
        img = os.path.join(mnt, "bench.iso")
        stop = threading.Event()
        results = [{"reads": 0, "bytes": 0, "wrong": [], "errors": []} for _ in range(a.readers)]
        threads = [threading.Thread(target=reader, args=("seq" if i % 2 == 0 else "rand", img, iso, 1000 + i, stop,
                                                         results[i]), daemon=True) for i in range(a.readers)]
        for t in threads:
            t.start()
        samples = []
        t0 = time.monotonic()
        tick = 0
        while time.monotonic() - t0 < a.minutes * 60:
            time.sleep(5)
            tick += 1
            if tick % 2 == 0:
                # Drop the page cache (the mount's too) every 10 s, so reads
                # keep reaching the daemon instead of the kernel's copy.
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("1\n")
            if p.poll() is not None:
                break
            samples.append((round(time.monotonic() - t0), *daemon_sample(p.pid)))
            print(f"  {samples[-1][0]:5d} s  RSS {samples[-1][1]:7.1f} MiB  fds {samples[-1][2]:4d}  "
                  f"reads {sum(r['reads'] for r in results)}", flush=True)
        stop.set()
        for t in threads:
            t.join(180)
        alive = p.poll() is None
        status = json.load(open(os.path.join(mnt, ".jigdoofus-status"))) if alive else {}
        reads = sum(r["reads"] for r in results)
        gb = sum(r["bytes"] for r in results) / 1e9
        wrong = [w for r in results for w in r["wrong"]]
        errors = [e for r in results for e in r["errors"]]
        rss = [x[1] for x in samples]
        fds = [x[2] for x in samples]
        print(f"\nsoak: {a.minutes} min, {a.readers} readers, image {size} bytes, cache {capacity} bytes")
        print(f"reads {reads}, {gb:.1f} GB compared, wrong {len(wrong)}, failed {len(errors)}, daemon alive {alive}")
        if rss:
            print(f"RSS MiB first/max/last {rss[0]:.1f}/{max(rss):.1f}/{rss[-1]:.1f}; "
                  f"open files first/max/last {fds[0]}/{max(fds)}/{fds[-1]}")
        if status:
            print("status:", json.dumps({k: status.get(k) for k in ("mirror", "cache")}))
            print("failures:", json.dumps(status["fs"]["failures"]))
        for w in (wrong + errors)[:10]:
            print("  ", w)
        return 0 if alive and not wrong and not errors else 1
    finally:
        s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
