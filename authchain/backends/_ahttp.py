"""HTTP/1.1 requests made on the running event loop: the native async path of HTTP sources.

Why not the SDK's client on a thread pool: a thread running hvac/requests
holds the GIL for 1.2-1.6 ms of every request, so 8 of them answering at once
keep the event loop waiting for several milliseconds (benchmarks/RESULTS.md,
"Heartbeat"). Here the loop only writes a request and parses the answer:
h11 (the HTTP/1.1 engine httpx is built on, sans-I/O, well kept) for the
framing, asyncio streams for the bytes, the ``ssl`` module for TLS.

One :class:`Transport` per origin (scheme, host, port) lends, on each event
loop, at most ``max_connections`` connections at once (asyncio streams belong
to the loop that opened them). A connection is kept alive only for a caller
already waiting for one: a burst of lookups shares a few connections, and
when it is over none is left open. Nothing then outlives the loop (no task,
timer or socket that ``asyncio.run`` or a hand-closed loop would have to
clean up), and a lone lookup, which the chain's cache makes rare, pays a
connect. A connection that fails before any byte of the answer arrived is
replaced once (the server closed it as it was handed over).

Redirects are not followed here: the caller decides (a token must never
follow one to another origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Lease", "Response", "Transport", "available"]

READ_SIZE = 65536


def available() -> bool:
    """h11 can be imported (it comes with the source's extra; without it the source uses threads)."""
    try:
        import h11  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default


class _Connection:
    __slots__ = ("protocol", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11

        self.reader, self.writer = reader, writer
        self.protocol = h11.Connection(h11.CLIENT)

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def closed(self) -> None:
        """Close, and wait until the socket is (else a loop closed right after keeps it open)."""
        self.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def exchange(self, method: str, target: str, headers: list[tuple[str, str]]) -> Response:
        """One request and its whole answer; raises ``_NothingReceived`` if the connection
        failed before the first byte of the answer (safe to send again on a new one)."""
        import h11

        protocol = self.protocol
        received = False
        body: list[bytes] = []
        data = b""
        event: Any = None
        try:
            request = protocol.send(h11.Request(method=method, target=target, headers=headers))
            self.writer.write(request + protocol.send(h11.EndOfMessage()))  # one write: one send()
            await self.writer.drain()
            status = 0
            answer: list[tuple[str, str]] = []
            while True:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    data = await self.reader.read(READ_SIZE)
                    received = received or bool(data)
                    protocol.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    answer = [
                        (key.decode("latin-1"), value.decode("latin-1")) for key, value in event.headers
                    ]
                elif isinstance(event, h11.Data):
                    body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return Response(status, tuple(answer), b"".join(body))
                elif isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the server closed the connection mid-answer")
        except BaseException as error:
            # A traceback keeps this frame and ``self``: none of the answer stays in them.
            body.clear()
            data, event = b"", None
            self.protocol = protocol = h11.Connection(h11.CLIENT)  # the old one's buffer held the rest
            if not received and isinstance(error, (ConnectionError, h11.RemoteProtocolError)):
                raise _NothingReceived() from error
            raise

    def reusable(self) -> bool:
        """Ready for another request: the last exchange ended cleanly and the server keeps it open."""
        import h11

        protocol = self.protocol
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
        return protocol.our_state is h11.IDLE and protocol.their_state is h11.IDLE and self.usable()


class _NothingReceived(Exception):
    """The connection failed before any byte of the answer: the request may go again on a new one."""


class _LoopPool:
    """One event loop's connections to one origin."""

    def __init__(self, max_connections: int) -> None:
        self.slots = asyncio.Semaphore(max_connections)
        self.waiting = 0  # callers waiting for a slot: whom an idle connection is kept for
        self.idle: list[_Connection] = []

    def close_idle(self) -> None:
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()


class Lease:
    """One slot of a transport's pool on this loop, and the connection it uses
    (``async with transport.lease() as lease: await lease.request(...)``)."""

    def __init__(self, transport: Transport, pool: _LoopPool) -> None:
        self._transport = transport
        self._pool = pool
        self._connection: _Connection | None = None
        self._dropped: list[_Connection] = []

    async def __aenter__(self) -> Lease:
        pool = self._pool
        pool.waiting += 1
        try:
            await pool.slots.acquire()
        except BaseException:
            pool.waiting -= 1
            if not pool.waiting:
                pool.close_idle()  # kept for a caller that stopped waiting
            raise
        pool.waiting -= 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pool, connection, self._connection = self._pool, self._connection, None
        try:
            if connection is not None:
                if len(pool.idle) < pool.waiting and connection.reusable():
                    pool.idle.append(connection)  # for a caller of the burst waiting for a slot
                else:
                    self._dropped.append(connection)
            dropped, self._dropped = self._dropped, []
            for each in dropped:
                await each.closed()
        finally:
            pool.slots.release()

    async def request(
        self, method: str, path: str, headers: Iterable[tuple[str, str]], *, timeout: float
    ) -> Response:
        """``method`` ``path`` (below the URL's own path) within ``timeout`` seconds, connecting included.

        Raises ``asyncio.TimeoutError``, ``OSError`` (``ssl.SSLError`` among them) or
        ``h11.RemoteProtocolError``; the caller names them.
        """
        transport = self._transport
        target = transport.base_path + path
        sent = [("Host", transport.host_header), *headers]
        if sys.version_info >= (3, 11):  # no task per request, as wait_for makes
            async with asyncio.timeout(timeout):
                return await self._send(method, target, sent)
        return await asyncio.wait_for(self._send(method, target, sent), timeout)

    async def _send(self, method: str, target: str, headers: list[tuple[str, str]]) -> Response:
        for _ in range(2):
            connection, reused = await self._connect()
            try:
                return await connection.exchange(method, target, headers)
            except _NothingReceived as error:
                self._drop()
                if reused:
                    continue  # closed by the server as it was handed over: once more on a new one
                cause = error.__cause__
                raise cause if cause is not None else ConnectionResetError() from None
            except BaseException:  # a timeout, a cancellation, a broken answer: never reused
                self._drop()
                raise
        raise ConnectionResetError("the server closed the connection")  # pragma: no cover

    async def _connect(self) -> tuple[_Connection, bool]:
        connection = self._connection
        if connection is not None and connection.reusable():
            return connection, True
        self._drop()
        while self._pool.idle:
            connection = self._pool.idle.pop()
            if connection.usable():
                self._connection = connection
                return connection, True
            connection.close()
        transport = self._transport
        reader, writer = await asyncio.open_connection(
            transport.host,
            transport.port,
            ssl=transport.ssl_context,
            server_hostname=transport.host if transport.ssl_context is not None else None,
        )
        self._connection = _Connection(reader, writer)
        return self._connection, False

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            self._dropped.append(connection)  # waited for at the lease's end


class Transport:
    """Keep-alive HTTP/1.1 connections to one origin, for each event loop that uses it."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None, max_connections: int = 8) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        netloc = parts.netloc.rpartition("@")[2]  # never a user:password of the URL in a header
        self.host_header = netloc
        self.ssl_context = ssl_context if parts.scheme == "https" else None
        self.max_connections = max_connections
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def lease(self) -> Lease:
        """A slot of this loop's pool and the connection it uses, for one caller's requests.

        At most ``max_connections`` callers hold one at a time; a caller takes it
        before any other work, so a burst of lookups waits here for the price of
        a future each instead of all preparing their requests in the same loop pass.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.get(loop)
            if pool is None:
                pool = self._pools[loop] = _LoopPool(self.max_connections)
        return Lease(self, pool)

    def close(self) -> None:
        """Forget every loop's pool (connections lent out close when their lease ends)."""
        with self._lock:
            pools = list(self._pools.items())
            self._pools.clear()
        try:
            running: Any = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, pool in pools:
            if loop is running:
                pool.close_idle()
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(pool.close_idle)
