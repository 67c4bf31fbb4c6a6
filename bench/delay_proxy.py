#!/usr/bin/python3
"""bench/delay_proxy.py: a TCP proxy on 127.0.0.1 that adds round-trip latency.

Stands in for `tc qdisc ... netem delay`, which this machine's kernel lacks
(no sch_netem). Every chunk is forwarded DELAY_MS/2 after it arrived, in each
direction, so a request/response round trip costs DELAY_MS more; chunks are
queued, not serialised behind each other's sleeps, so bandwidth is kept (up
to what one Python process can copy). Listens and connects only on
127.0.0.1. Prints "ready PORT" once listening; stops on SIGTERM/SIGINT or
after --max-seconds.

Usage: delay_proxy.py --listen-port P --upstream-port Q --delay-ms 20
"""
import argparse
import asyncio
import signal

QUEUE_CHUNKS = 512  # back-pressure: at most this many chunks in flight per direction


async def pump(reader, writer, delay):
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
            writer.write(data)
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
    ap.add_argument("--max-seconds", type=float, default=4 * 3600)
    args = ap.parse_args()
    one_way = args.delay_ms / 2000.0

    async def handle(c_reader, c_writer):
        try:
            u_reader, u_writer = await asyncio.open_connection("127.0.0.1", args.upstream_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(pump(c_reader, u_writer, one_way), pump(u_reader, c_writer, one_way))
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
