"""A TCP proxy on 127.0.0.1 that holds every chunk a client sends for `delay_ms` before passing it on: in front of
the GCS emulator it gives each request the round trip a real bucket has (a few to tens of milliseconds from a VM),
which an emulator on the same machine lacks. Replies pass at once. Connections are independent, so parallel
requests wait in parallel, as over a network.

    with LatencyProxy("127.0.0.1", 4443, delay_ms=20) as proxy:
        os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
"""

from __future__ import annotations

import asyncio
import threading


class LatencyProxy:
    def __init__(self, host: str, port: int, delay_ms: float):
        self.upstream = (host, port)
        self.delay = delay_ms / 1000
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LatencyProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the latency proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        async def close_all() -> None:  # every connection's pipes end (closing their sockets) before the loop stops
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer, self.delay), self._pipe(up_reader, writer, 0.0))
        except asyncio.CancelledError:  # the proxy closing: ends quietly (a cancelled handler is logged as an error)
            pass

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float) -> None:
        try:
            while data := await source.read(1 << 16):
                if delay:
                    await asyncio.sleep(delay)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()
