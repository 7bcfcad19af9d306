"""A TCP relay with one-way latency, in its own thread: the network between a balancer and a pod."""

from __future__ import annotations

import asyncio
import threading

from hmb.ops.stack_pg import HOST


class DelayRelay:
    """Forwards each listening port to a target port, every chunk and every FIN `delay_s` late."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []

    def forward(self, target_port: int) -> int:
        """Start relaying a new local port to target_port; returns the new port."""
        return asyncio.run_coroutine_threadsafe(self._listen(target_port), self.loop).result(5)

    async def _listen(self, target_port: int) -> int:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(HOST, target_port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

        server = await asyncio.start_server(accept, HOST, 0)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                try:
                    if not data:
                        writer.close()  # the FIN (or reset) arrives late too
                        return
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, RuntimeError):
                    return

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((self.loop.time() + self.delay_s, data))
        except ConnectionError:
            pass
        queue.put_nowait((self.loop.time() + self.delay_s, b""))
        await sender

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
