#!/usr/bin/python3
"""bench/delay_proxy.py: a TCP proxy on 127.0.0.1 that plays a far mirror:
added round-trip time, a capped uplink, and (optionally) stalls.

Stands in for `tc qdisc ... netem`, which this machine's kernel lacks (no
sch_netem). Every chunk is forwarded DELAY_MS/2 after it arrived, in each
direction, so a request/response round trip costs DELAY_MS more; chunks are
queued, not serialised behind each other's sleeps, so bandwidth is kept (up
to what one Python process can copy).

--rate BYTES_PER_S caps what the mirror sends (upstream to client), shared
by all connections through this proxy, as a mirror's uplink is: a token
bucket, 16 KiB at a time. --stall-every S --stall-for T: every S seconds the
mirror stops sending for T seconds (all its connections), then goes on.

Listens and connects only on 127.0.0.1. Prints "ready PORT" once listening;
stops on SIGTERM/SIGINT or after --max-seconds. Used by bench/bench.py and
by the integration tests of the mirror scheduler.

Usage: delay_proxy.py --listen-port P --upstream-port Q --delay-ms 20
                      [--rate 4000000] [--stall-every 10 --stall-for 3]
"""
import argparse
import asyncio
import signal

QUEUE_CHUNKS = 512  # back-pressure: at most this many chunks in flight per direction
PIECE = 16 * 1024   # bytes sent per token-bucket grant


class Uplink:
    """The mirror's sending side: a rate shared by every connection, and
    its stalls."""

    def __init__(self, rate, stall_every, stall_for):
        self.rate = rate
        self.stall_every = stall_every
        self.stall_for = stall_for
        self.next_free = 0.0  # when the link can start the next piece
        self.start = None

    async def send_slot(self, n):
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.start is None:
            self.start = now
        if self.stall_every > 0:
            phase = (now - self.start) % self.stall_every
            if phase >= self.stall_every - self.stall_for:
                await asyncio.sleep(self.stall_every - phase)
                now = loop.time()
        if self.rate > 0:
            at = max(now, self.next_free)
            self.next_free = at + n / self.rate
            if at > now:
                await asyncio.sleep(at - now)


async def pump(reader, writer, delay, uplink=None):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(QUEUE_CHUNKS)

    async def read_side():
        while True:
            data = await reader.read(256 * 1024)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            if uplink is None:
                writer.write(data)
                await writer.drain()
                continue
            for i in range(0, len(data), PIECE):
                piece = data[i:i + PIECE]
                await uplink.send_slot(len(piece))
                writer.write(piece)
                await writer.drain()

    try:
        await asyncio.gather(read_side(), write_side())
    except (ConnectionError, OSError):
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen-port", type=int, required=True)
    ap.add_argument("--upstream-port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, required=True, help="added round-trip time")
    ap.add_argument("--rate", type=float, default=0, help="uplink cap in bytes/s, shared (0: none)")
    ap.add_argument("--stall-every", type=float, default=0, help="seconds between stalls (0: none)")
    ap.add_argument("--stall-for", type=float, default=0, help="seconds each stall lasts")
    ap.add_argument("--max-seconds", type=float, default=4 * 3600)
    args = ap.parse_args()
    one_way = args.delay_ms / 2000.0
    shaped = args.rate > 0 or args.stall_every > 0
    uplink = Uplink(args.rate, args.stall_every, args.stall_for) if shaped else None

    async def handle(c_reader, c_writer):
        try:
            u_reader, u_writer = await asyncio.open_connection("127.0.0.1", args.upstream_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(pump(c_reader, u_writer, one_way), pump(u_reader, c_writer, one_way, uplink))
        for w in (c_writer, u_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen_port, backlog=256)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {args.listen_port}", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
