"""HTTP servers for the network integration tests, and the sites they serve.

* Nginx: nginx(-light) on 127.0.0.1 with a throw-away config (daemon off,
  pid/logs/temp dirs in the test's tmp dir), started on a free port and
  stopped by pid. Counts requests from its access log ($uri, decoded).
* Squid: a real Squid on 127.0.0.1 (worker as `proxy`, a small disk
  cache in its own directory), with a snippet of the caller's included.
* AptCacherNg: a real apt-cacher-ng on 127.0.0.1 (as its own user, cache
  and logs in its own directory), used in its URL form
  (http://ACNG/HOST:PORT/path).
* FaultServer: tests/tools/fault_server.py (fault injection, counters at
  /__stats, rules at /__fault), started with --port 0 and stopped by pid.
* ShapedMirror: bench/delay_proxy.py in front of a server: a far mirror
  with its own round-trip time, uplink cap (shared by its connections) and
  stalls; started on a free port, stopped by pid.
* publish(): a served directory for one corpus variant: the pool (hard
  links to the corpus tree), the template, and a rewritten .jigdo whose
  Template= is relative, whose Filename= is clean and whose [Servers] are
  the ones the test names.
* no_proxy_env(): the environment for jigdoofus without proxy variables (the
  daemon honours them; the test servers are on 127.0.0.1).

Missing tools make the tests FAIL with a message naming them.
"""

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 15
FAULT_SERVER = Path(__file__).resolve().parents[2] / "tools" / "fault_server.py"
DELAY_PROXY = Path(__file__).resolve().parents[3] / "bench" / "delay_proxy.py"
PYTHON = "/usr/bin/python3"
_PROXY_VARS = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy")


def no_proxy_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env.update(extra or {})
    return env


def _opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url, timeout=10):
    with _opener().open(url, timeout=timeout) as r:
        return r.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_low_port():
    """A free port below 32768 (apt-cacher-ng 3.7 cannot bind higher ones:
    "Error resolving address for binding")."""
    import random
    for _ in range(200):
        port = random.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below 32768")


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_pid(proc, name):
    """SIGTERM to this one process (by pid), SIGKILL after 5 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _spawn_listening(name, pick_port, prepare, log_path, failure_text, attempts=5,
                     timeout=START_TIMEOUT_S):
    """Starts a server on a port of our choosing and waits until it accepts
    connections (a free port may be taken before the server binds it: then
    another is tried). `prepare(port)` writes the server's configuration and
    returns its command line; `failure_text()` what its logs say. Returns
    (process, port)."""
    last = ""
    for _ in range(attempts):
        port = pick_port()
        cmd = prepare(port)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            if _port_open(port):
                return proc, port
            time.sleep(0.05)
        _stop_pid(proc, name)
        last = failure_text()
    raise RuntimeError(f"{name} did not start: {last[-2000:]}")


def _find_nginx():
    for p in ("/usr/sbin/nginx", "/usr/bin/nginx", shutil.which("nginx")):
        if p and os.access(p, os.X_OK):
            return p
    raise RuntimeError("the network tests need nginx (apt-get install nginx-light; "
                       ".ci/install-deps does)")


NGINX_CONF = """\
daemon off;
master_process {master};
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format counted '$status $uri';
    access_log {prefix}/access.log counted;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""

DEFAULT_SERVER = """\
        root {root};
        location / {{ }}"""


class Nginx:
    """`server`: the body of the server block (after `listen`), default a
    static root. `worker_user`: run the worker as this user (master
    process on, as in production) instead of one process as root.
    `low_port`: listen below 32768 (for apt-cacher-ng)."""

    def __init__(self, root, workdir, server=None, worker_user=None, low_port=False):
        self.root = Path(root).resolve()
        self.pick_port = free_low_port if low_port else free_port
        self.prefix = Path(workdir).resolve()
        self.server = server if server is not None else DEFAULT_SERVER.format(root=self.root)
        self.worker_user = worker_user
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        exe = _find_nginx()
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        if self.worker_user:
            master, user = "on", f"user {self.worker_user};"
        else:
            master, user = "off", "user root;" if os.geteuid() == 0 else ""
        conf = self.prefix / "nginx.conf"

        def prepare(port):
            conf.write_text(NGINX_CONF.format(master=master, user=user, prefix=self.prefix,
                                              port=port, server=self.server))
            return [exe, "-e", str(self.prefix / "error.log"), "-c", str(conf), "-p", str(self.prefix)]

        def failure_text():
            out = (self.prefix / "nginx.out").read_text(errors="replace")
            err = self.prefix / "error.log"
            return out + (err.read_text(errors="replace") if err.exists() else "")

        self.proc, self.port = _spawn_listening("nginx", self.pick_port, prepare, self.prefix / "nginx.out",
                                                failure_text)
        return self

    def stop(self):
        if self.proc:
            _stop_pid(self.proc, "nginx")

    def requests(self):
        """{decoded path: count} of every request so far (all statuses)."""
        counts = {}
        log = self.prefix / "access.log"
        if not log.exists():
            return counts
        for line in log.read_text(errors="replace").splitlines():
            status, _, path = line.partition(" ")
            counts[path] = counts.get(path, 0) + 1
        return counts

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


SQUID_CONF = """\
http_port 127.0.0.1:{port}
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
access_log stdio:{dir}/access.log squid
cache_store_log none
coredump_dir {dir}
cache_effective_user proxy
shutdown_lifetime 1 seconds
http_access allow localhost
http_access deny all
include {snippet}
cache_dir ufs {dir}/spool 500 16 256
"""


class Squid:
    """squid -N with SQUID_CONF: `snippet` (a file) is included verbatim
    before the cache_dir. The working directory lives under /tmp, 0755 and
    owned by `proxy`, since Squid drops root."""

    def __init__(self, snippet):
        self.snippet = Path(snippet).resolve()
        self.dir = None
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        import pwd
        import tempfile
        exe = shutil.which("squid") or "/usr/sbin/squid"
        if not os.access(exe, os.X_OK):
            raise RuntimeError("the site cache test needs squid (apt-get install squid; "
                               ".ci/install-deps does)")
        proxy = pwd.getpwnam("proxy")
        self.dir = Path(tempfile.mkdtemp(prefix="jigdoofus-squid-"))
        os.chmod(self.dir, 0o755)
        os.chown(self.dir, proxy.pw_uid, proxy.pw_gid)
        conf = self.dir / "squid.conf"

        def prepare(port):
            conf.write_text(SQUID_CONF.format(port=port, dir=self.dir, snippet=self.snippet))
            z = subprocess.run([exe, "-N", "-z", "-f", str(conf)], capture_output=True, text=True, timeout=60)
            if z.returncode != 0:
                raise RuntimeError(f"squid -z failed: {z.stderr[-2000:]}")
            return [exe, "-N", "-f", str(conf)]

        def failure_text():
            log = self.dir / "cache.log"
            return (self.dir / "squid.out").read_text(errors="replace") + \
                (log.read_text(errors="replace") if log.exists() else "")

        self.proc, self.port = _spawn_listening("squid", free_port, prepare, self.dir / "squid.out",
                                                failure_text, attempts=3, timeout=30)
        return self

    def stop(self):
        if self.proc:
            _stop_pid(self.proc, "squid")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_lines(self):
        log = self.dir / "access.log"
        return log.read_text(errors="replace").splitlines() if log.exists() else []


ACNG_CONF = """\
Port: {port}
BindAddress: 127.0.0.1
CacheDir: {dir}/cache
LogDir: {dir}/log
PidFile: {dir}/acng.pid
ForeGround: 1
ExThreshold: 4
AllowUserPorts: 80 {allow_port}
"""


class AptCacherNg:
    """apt-cacher-ng -c DIR in the foreground as user apt-cacher-ng.
    `origin_port`: the port of the server it may fetch from (it refuses
    ports other than 80 unless told)."""

    USER = "apt-cacher-ng"

    def __init__(self, origin_port):
        self.origin_port = origin_port
        self.dir = None
        self.proc = None
        self.port = None

    def url_for(self, origin_url):
        """The apt-cacher-ng URL form of `origin_url` (http://HOST:PORT/p/)."""
        rest = origin_url.split("://", 1)[1]
        return f"http://127.0.0.1:{self.port}/{rest}"

    def start(self):
        import pwd
        import tempfile
        exe = "/usr/sbin/apt-cacher-ng"
        if not os.access(exe, os.X_OK):
            raise RuntimeError("the site cache test needs apt-cacher-ng (apt-get install apt-cacher-ng; "
                               ".ci/install-deps does)")
        user = pwd.getpwnam(self.USER)
        self.dir = Path(tempfile.mkdtemp(prefix="jigdoofus-acng-"))
        os.chmod(self.dir, 0o755)
        for sub in ("cache", "log", "conf"):
            (self.dir / sub).mkdir()
        for p in [self.dir] + [self.dir / sub for sub in ("cache", "log", "conf")]:
            os.chown(p, user.pw_uid, user.pw_gid)

        def prepare(port):
            (self.dir / "conf" / "acng.conf").write_text(
                ACNG_CONF.format(port=port, dir=self.dir, allow_port=self.origin_port))
            return ["runuser", "-u", self.USER, "--", exe, "-c", str(self.dir / "conf")]

        def failure_text():
            text = (self.dir / "acng.out").read_text(errors="replace")
            for f in sorted((self.dir / "log").glob("*.err")):
                text += f.read_text(errors="replace")
            return text

        self.proc, self.port = _spawn_listening("apt-cacher-ng", free_low_port, prepare, self.dir / "acng.out",
                                                failure_text, attempts=3)
        return self

    def stop(self):
        if self.proc:
            _stop_pid(self.proc, "apt-cacher-ng")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class FaultServer:
    def __init__(self, root, workdir, faults=()):
        self.root = Path(root).resolve()
        self.workdir = Path(workdir)
        self.faults = list(faults)
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "port"
        if port_file.exists():
            port_file.unlink()
        cmd = [PYTHON, str(FAULT_SERVER), "--root", str(self.root), "--port", "0",
               "--port-file", str(port_file)]
        for pattern, mode in self.faults:
            cmd += ["--fault", f"{pattern}={mode}"]
        log = open(self.workdir / "fault_server.out", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline and self.proc.poll() is None:
            if port_file.exists():
                self.port = int(port_file.read_text())
                return self
            time.sleep(0.05)
        _stop_pid(self.proc, "fault_server")
        raise RuntimeError("fault_server.py did not start: " +
                           (self.workdir / "fault_server.out").read_text(errors="replace")[-2000:])

    def stop(self):
        if self.proc:
            _stop_pid(self.proc, "fault_server")

    def _control(self, path, **query):
        q = urllib.parse.urlencode(query)
        return http_get(f"{self.url}{path}" + (f"?{q}" if q else ""))

    def stats(self):
        return json.loads(self._control("__stats"))

    def requests(self):
        """{decoded path: count} since the last reset()."""
        return self.stats()["requests"]

    def total(self):
        return self.stats()["total"]

    def reset(self):
        self._control("__reset")

    def set_fault(self, pattern, mode):
        """Adds a rule in front (mode 'none' removes the pattern's rule)."""
        self._control("__fault", pattern=pattern, mode=mode)

    def clear_faults(self):
        self._control("__fault", clear=1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ShapedMirror:
    def __init__(self, upstream_port, workdir, delay_ms=0, rate=0, stall_every=0, stall_for=0):
        self.upstream_port = upstream_port
        self.workdir = Path(workdir)
        self.args = ["--delay-ms", str(delay_ms), "--rate", str(rate), "--stall-every", str(stall_every),
                     "--stall-for", str(stall_for)]
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / "delay_proxy.log"

        def prepare(port):
            return [PYTHON, str(DELAY_PROXY), "--listen-port", str(port), "--upstream-port",
                    str(self.upstream_port), *self.args]

        self.proc, self.port = _spawn_listening(
            "delay_proxy", free_port, prepare, log_path,
            lambda: log_path.read_text(errors="replace") if log_path.exists() else "")
        return self

    def stop(self):
        if self.proc:
            _stop_pid(self.proc, "delay_proxy")


# ------------------------------------------------------------ served sites

def _link_tree(src: Path, dst: Path):
    """dst mirrors src with hard links (copies across filesystems)."""
    for p in sorted(src.rglob("*")):
        if not p.is_file():
            continue
        t = dst / p.relative_to(src)
        t.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(p, t)
        except OSError:
            shutil.copyfile(p, t)


def rewrite_jigdo(text, *, filename=None, template=None, servers=(), drop_servers=True,
                  template_sum=None):
    """The .jigdo text with Filename= / Template= (/ Template-SHA256Sum=)
    replaced in every [Image], the [Servers] sections dropped and
    `servers` ("Label=URL [options]" lines) appended as a new one."""
    out = []
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip()
            if section == "Servers" and drop_servers:
                continue
        elif section == "Servers" and drop_servers:
            continue
        elif section == "Image":
            key = s.split("=", 1)[0].strip()
            if key == "Filename" and filename is not None:
                line = f"Filename={filename}"
            elif key == "Template" and template is not None:
                line = f"Template={template}"
            elif key == "Template-SHA256Sum" and template_sum is not None:
                line = f"Template-SHA256Sum={template_sum}"
        out.append(line)
    if servers:
        out += ["", "[Servers]"] + list(servers)
    return "\n".join(out) + "\n"


class Site:
    """A served directory: root/pool/... and root/<subdir>/<stem>.jigdo +
    .template for each published variant."""

    def __init__(self, root, tree):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        _link_tree(Path(tree), self.root)  # tree holds pool/...
        self.pool_paths = sorted("/" + str(p.relative_to(self.root))
                                 for p in self.root.rglob("*") if p.is_file())

    def publish(self, variant, servers, *, subdir="cd", stem=None, gzip_jigdo=False,
                template_name=None, template_ref=None, template_sum=None):
        """Publishes one single-image variant. Returns (jigdo URL path,
        image file name in the mount). `servers`: [Servers] lines."""
        stem = stem or variant.id
        d = self.root / subdir
        d.mkdir(parents=True, exist_ok=True)
        src_jigdo = Path(variant.jigdo)
        raw = src_jigdo.read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
        tname = template_name or f"{stem}.template"
        src_template = src_jigdo.with_suffix(".template")
        shutil.copyfile(src_template, d / tname)
        name = f"{stem}.iso"
        text = rewrite_jigdo(text, filename=name, template=template_ref or tname,
                             servers=servers, template_sum=template_sum)
        data = text.encode()
        if gzip_jigdo:
            data = gzip.compress(data)
        (d / f"{stem}.jigdo").write_bytes(data)
        return f"/{subdir}/{stem}.jigdo", name


def requested_pool_paths(requests):
    """{path: n} restricted to slice downloads (/pool/...)."""
    return {p: n for p, n in requests.items() if p.startswith("/pool/")}


class Net:
    """Per-test servers and sites; close() stops every server by pid."""

    def __init__(self, tmp_path, tree):
        self.tmp = Path(tmp_path)
        self.tree = Path(tree)
        self.servers = []
        self.n = 0

    def site(self, name="site"):
        return Site(self.tmp / name, self.tree)

    def nginx(self, root, **kwargs):
        self.n += 1
        s = Nginx(root, self.tmp / f"nginx{self.n}", **kwargs)
        self.servers.append(s)
        return s.start()

    def squid(self, snippet):
        s = Squid(snippet)
        self.servers.append(s)
        return s.start()

    def apt_cacher_ng(self, origin_port):
        s = AptCacherNg(origin_port)
        self.servers.append(s)
        return s.start()

    def shaped_mirror(self, upstream_port, **shape):
        self.n += 1
        s = ShapedMirror(upstream_port, self.tmp / f"shaped{self.n}", **shape)
        self.servers.append(s)
        return s.start()

    def fault_server(self, root, faults=()):
        self.n += 1
        s = FaultServer(root, self.tmp / f"fault{self.n}", faults)
        self.servers.append(s)
        return s.start()

    def published_behind_fault_server(self, variant):
        """variant's .jigdo and template on a new site whose one server
        (Debian=) is a fault-injecting server over that site.
        Returns (site, fault server, .jigdo path, image name)."""
        site = self.site()
        fs = self.fault_server(site.root)
        path, name = site.publish(variant, [f"Debian={fs.url}"])
        return site, fs, path, name

    def close(self):
        for s in reversed(self.servers):
            s.stop()
