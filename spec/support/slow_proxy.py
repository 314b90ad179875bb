#!/usr/bin/env python3
"""A TCP proxy that slows every connection to RATE bytes per second each
way, in front of a real server: transfers against a local rgw then last
long enough to be interrupted on purpose (spec/interrupt_spec.lua).

Usage: slow_proxy.py LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT RATE
Listens on 127.0.0.1 only; prints "ready" once it accepts connections.
Run it under timeout(1): it never ends by itself.
"""
import asyncio
import sys

CHUNK = 64 * 1024


async def pipe(reader, writer, rate):
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(len(data) / rate)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    port, host, uport, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

    async def handle(creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(host, uport)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, uwriter, rate), pipe(ureader, cwriter, rate))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
