#!/usr/bin/python3
"""fault_server.py: a small HTTP/1.1 file server that injects faults on demand.

Used by jigdoofus' unit tests (tests/unit/downloader_test.cc) and
integration tests. Python standard library only; run with /usr/bin/python3.

Usage:
  /usr/bin/python3 fault_server.py --root DIR [--bind 127.0.0.1] [--port 0]
      [--port-file FILE] [--fault PATTERN=MODE ...] [--faults-json FILE]
      [--tls CERT.pem:KEY.pem] [-v]

  --tls serves HTTPS with that certificate (tests make a self-signed one).

  Serves the files under DIR (GET and HEAD, keep-alive, single Range
  "bytes=a-b"). With --port 0 the kernel picks the port; it is written to
  --port-file (atomically, via rename) once the server is listening, so a
  test learns readiness by waiting for that file, not by sleeping.
  SIGTERM (or SIGINT) stops it.

Faults: PATTERN is an fnmatch glob on the decoded request path ("/a.iso",
"/pool/*.deb", "*"); the first matching rule applies. MODE is one of
  404 | 500 | 503 | NNN  that HTTP status (any 400..599), with a short body
  reset                  send half the body, then RST the connection
  truncate               announce the full Content-Length, send half, close
  corrupt                right length, but bytes flipped (first, middle, last)
  stall[:SECONDS]        send the headers, then hang (default 300 s)
  slow[:BYTES_PER_SEC]   trickle the body (default 1024 B/s)
  long[:EXTRA]           append EXTRA bytes (default 4096) to the body,
                         Content-Length included
  nolength               no Content-Length: the body ends when the
                         connection closes (HTTP/1.0 style)
  close[:BYTES_PER_SEC]  "Connection: close" after each answer (a server
                         without keep-alive); with a rate, trickled as slow
  redirect-loop          302 to the same path
  redirect:/OTHER/PATH   302 to another path (or to a full URL:
                         redirect:http://HOST:PORT/PATH)
  flaky-N                503 for the first N requests of the path, then normal
  norange                ignore Range headers: 200 with the whole file
  badrange               answer a Range request with the bytes one further
                         on, and a Content-Range that says so
Rules come from --fault (repeatable), --faults-json FILE (an object
{"PATTERN": "MODE", ...}), or at run time:
  GET /__fault?pattern=P&mode=M   add a rule (first in order); mode=none removes P
  GET /__fault?clear=1            remove every rule

Control endpoints (not counted):
  GET /__stats   JSON: {"requests": {path: count}, "raw": {path as sent: count},
                 "ranged": {path: requests with a Range header}, "total": n,
                 "max_concurrent": n (requests in progress at once),
                 "connections": n (opened), "max_connections": n (open at once)}
  GET or POST /__reset   zero the counters (rules stay)
"""

import argparse
import errno
import fnmatch
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    """Counters and fault rules shared by all handler threads."""

    def __init__(self, root, rules):
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.rules = list(rules)  # [(pattern, mode)], first match wins
        self.concurrent = 0        # requests in progress now
        self.open_connections = 0  # connections open now
        self.reset()

    def reset(self):
        """Zeroes the counters; the maxima restart from what is open now."""
        with self.lock:
            self.requests = {}
            self.raw = {}
            self.ranged = {}
            self.total = 0
            self.max_concurrent = self.concurrent
            self.connections = 0
            self.max_connections = self.open_connections

    def begin_request(self, path, raw="", ranged=False):
        with self.lock:
            self.raw[raw] = self.raw.get(raw, 0) + 1
            if ranged:
                self.ranged[path] = self.ranged.get(path, 0) + 1
            self.requests[path] = self.requests.get(path, 0) + 1
            self.total += 1
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
            return self.requests[path]

    def end_request(self):
        with self.lock:
            self.concurrent -= 1

    def connection(self, delta):
        with self.lock:
            self.open_connections += delta
            if delta > 0:
                self.connections += 1
                self.max_connections = max(self.max_connections, self.open_connections)

    def fault_for(self, path):
        with self.lock:
            for pattern, mode in self.rules:
                if fnmatch.fnmatchcase(path, pattern):
                    return mode
        return None

    def stats(self):
        with self.lock:
            return {"requests": dict(self.requests), "raw": dict(self.raw), "ranged": dict(self.ranged),
                    "total": self.total,
                    "max_concurrent": self.max_concurrent,
                    "connections": self.connections,
                    "max_connections": self.max_connections}


def split_mode(mode):
    """'stall:5' -> ('stall', '5'); 'flaky-3' -> ('flaky', '3'); '404' -> ('404', None)."""
    if mode.startswith("flaky-"):
        return "flaky", mode[len("flaky-"):]
    name, _, arg = mode.partition(":")
    return name, (arg or None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault_server/1"

    # -- plumbing --

    def setup(self):
        super().setup()
        self.server.state.connection(+1)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.state.connection(-1)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fault_server: " + (fmt % args) + "\n")

    def send_small(self, status, text, extra_headers=()):
        body = (text + "\n").encode()
        self.send_response(status)
        for k, v in extra_headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- control endpoints --

    def control(self, path, query):
        st = self.server.state
        if path == "/__stats":
            self.send_small(200, json.dumps(st.stats()))
        elif path == "/__reset":
            st.reset()
            self.send_small(200, "reset")
        elif path == "/__fault":
            q = urllib.parse.parse_qs(query)
            with st.lock:
                if "clear" in q:
                    st.rules.clear()
                else:
                    pattern = q.get("pattern", [""])[0]
                    mode = q.get("mode", ["none"])[0]
                    if not pattern:
                        self.send_small(400, "missing pattern")
                        return
                    st.rules = [(p, m) for p, m in st.rules if p != pattern]
                    if mode != "none":
                        st.rules.insert(0, (pattern, mode))
            self.send_small(200, "ok")
        else:
            self.send_small(404, "unknown control endpoint")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__reset":
            self.control(url.path, url.query)
        else:
            self.send_small(405, "POST only for /__reset")

    def do_HEAD(self):
        self.do_GET()

    # -- files --

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/__"):
            self.control(url.path, url.query)
            return
        path = urllib.parse.unquote(url.path)
        st = self.server.state
        nth = st.begin_request(path, url.path, "Range" in self.headers)
        try:
            self.serve(path, nth, st.fault_for(path))
        finally:
            st.end_request()

    def serve(self, path, nth, fault):
        name, arg = split_mode(fault) if fault else (None, None)
        if name == "flaky":
            if nth <= int(arg or 1):
                self.send_small(503, "flaky: failing request %d" % nth)
                return
            name = None
        if name and name.isdigit():
            self.send_small(int(name), "fault " + name)
            return
        if name == "redirect-loop":
            self.send_small(302, "loop", [("Location", self.path)])
            return
        if name == "redirect":
            self.send_small(302, "moved", [("Location", arg or "/")])
            return

        full = os.path.realpath(os.path.join(self.server.state.root, path.lstrip("/")))
        if not (full == self.server.state.root or full.startswith(self.server.state.root + os.sep)) \
                or not os.path.isfile(full):
            self.send_small(404, "not found: " + path)
            return
        with open(full, "rb") as f:
            data = f.read()

        status, headers = 200, []
        rng = self.headers.get("Range")
        if name == "norange":
            rng = None
        if rng:
            parsed = parse_range(rng, len(data))
            if parsed is None:
                self.send_small(416, "bad range", [("Content-Range", "bytes */%d" % len(data))])
                return
            a, b = parsed
            if name == "badrange" and b + 1 < len(data):
                a, b = a + 1, b + 1
            status = 206
            headers.append(("Content-Range", "bytes %d-%d/%d" % (a, b, len(data))))
            data = data[a:b + 1]

        if name == "corrupt" and data:
            buf = bytearray(data)
            for i in {0, len(buf) // 2, len(buf) - 1}:
                buf[i] ^= 0xFF
            data = bytes(buf)
        if name == "long":
            data = data + b"X" * int(arg or 4096)

        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        if name in ("nolength", "close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        if name != "nolength":
            self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return

        if name == "stall":
            self.wfile.flush()
            self.hang(float(arg or 300))
            self.close_connection = True
            return
        if name == "truncate":
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if name == "reset":
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            # SO_LINGER {on, 0}: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if name == "slow" or (name == "close" and arg):
            rate = max(1, int(arg or 1024))
            step = max(1, rate // 10)
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                time.sleep(step / rate)
            return
        self.wfile.write(data)

    def hang(self, seconds):
        """Sleeps up to `seconds`, returning early once the client goes away."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(min(left, 1.0))
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return  # client closed
            except socket.timeout:
                continue
            except OSError:
                return
            time.sleep(min(left, 0.2))  # client sent more (pipelined?): keep hanging


def parse_range(value, size):
    """'bytes=a-b' / 'bytes=a-' / 'bytes=-n' -> (first, last) inclusive, or None."""
    unit, _, spec = value.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size - 1
        a = int(first)
        b = int(last) if last else size - 1
    except ValueError:
        return None
    if a >= size or b < a:
        return None
    return a, min(b, size - 1)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients hanging up mid-response are part of the job here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, socket.timeout)) or \
                (isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.EBADF)):
            return
        super().handle_error(request, client_address)


def parse_rule(text):
    pattern, sep, mode = text.rpartition("=")
    if not sep or not pattern or not mode:
        raise argparse.ArgumentTypeError("expected PATTERN=MODE, got %r" % text)
    return pattern, mode


def main():
    ap = argparse.ArgumentParser(description="HTTP file server with fault injection (see module doc).")
    ap.add_argument("--root", required=True, help="directory to serve")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the listening port here (atomically)")
    ap.add_argument("--fault", action="append", type=parse_rule, default=[], metavar="PATTERN=MODE")
    ap.add_argument("--faults-json", help='file with {"PATTERN": "MODE", ...}')
    ap.add_argument("--tls", metavar="CERT:KEY", help="serve HTTPS with this certificate and key")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    rules = list(args.fault)
    if args.faults_json:
        with open(args.faults_json) as f:
            rules += list(json.load(f).items())

    server = Server((args.bind, args.port), Handler)
    if args.tls:
        import ssl
        cert, key = args.tls.split(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.state = State(args.root, rules)
    server.verbose = args.verbose

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    # A test that dies (a ctest timeout, kill -9) cannot stop its server by
    # pid: exit when the parent goes away, so no server outlives its test.
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)
    threading.Thread(target=watch_parent, daemon=True).start()

    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    else:
        print(port, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
