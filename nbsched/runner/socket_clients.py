"""The runner's socket clients: admitting connections, reading requests, answering them (a reply, raw bytes, or a
stream of chunks), and keeping the number of connections under the file limit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import logging
import resource
import socket
import time
from typing import TYPE_CHECKING

from .. import config, protocol
from ..errors import AuthError, NbschedError, ProtocolError, RunnerError
from .operations import checked_args

if TYPE_CHECKING:
    from .server import Runner

log = logging.getLogger("nbsched.runner")
#: Threads that read the store for streamed replies (``history --all``); more streams at once wait for one. Their
#: own threads: a client that stops reading holds one of these, never one the runner's other reads need.
STREAM_THREADS = 4
#: Seconds a stream waits for its client to take a chunk before it gives the stream up (a reader that stopped).
STREAM_STALL_SECONDS = 300.0


class Clients:
    """The connections of one runner's socket: each served by ``serve`` until it closes."""

    def __init__(self, runner: Runner, max_clients: int):
        self.runner = runner
        self.max_clients = max_clients
        self.tasks: set[asyncio.Task] = set()
        self.open: set[asyncio.StreamWriter] = set()
        self.idle: dict[asyncio.StreamWriter, None] = {}  # waiting for a request, the longest idle first
        self.stream_threads = concurrent.futures.ThreadPoolExecutor(STREAM_THREADS, thread_name_prefix="nbsched-stream")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        try:
            if not self._admit(writer):
                return
            _read_less_at_once(writer.transport)
            while True:
                self.idle[writer] = None
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    self.idle.pop(writer, None)
                    limit = config.MAX_REQUEST_BYTES
                    error = ProtocolError(
                        f"Request is larger than {limit} bytes; send less (for example, a smaller extra)."
                    )
                    writer.write(protocol.error_reply(None, error))
                    await writer.drain()
                    await _discard_rest_of_line(reader)
                    continue
                self.idle.pop(writer, None)
                if not line:
                    return
                if not line.strip():
                    continue
                for part in await self._answer(line):
                    if isinstance(part, protocol.Stream):
                        await self._stream(writer, part)
                    else:
                        await _send(writer, part)
                await writer.drain()
                self.runner.pacing.answered()
        except (ConnectionError, BrokenPipeError):
            pass
        except asyncio.CancelledError:  # the runner is stopping; end quietly (asyncio logs a cancelled handler)
            pass
        finally:
            self.open.discard(writer)
            self.idle.pop(writer, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream(self, writer: asyncio.StreamWriter, stream: protocol.Stream) -> None:
        """Send a stream's chunks as a thread makes them (reading the store), each once the client has taken
        the one before: the runner holds two chunks at a time, however long the listing."""
        loop = asyncio.get_running_loop()
        writer.write(stream.header())

        async def send(chunk: bytes) -> None:
            writer.write(protocol.Stream.frame(chunk))
            await writer.drain()

        def produce() -> int:
            sent, sending = 0, None
            try:
                for chunk in stream.chunks:  # read while the chunk before is sent: two chunks held at most
                    if self.runner.stopping:
                        raise RunnerError("The runner is stopping; ask again once it runs.")
                    if sending is not None:
                        self._taken(sending)
                    sending = asyncio.run_coroutine_threadsafe(send(chunk), loop)
                    sent += 1
                if sending is not None:
                    self._taken(sending)
            finally:
                stream.close()
            return sent

        try:
            last = protocol.reply(stream.request_id, await loop.run_in_executor(self.stream_threads, produce))
        except NbschedError as exc:
            last = protocol.error_reply(stream.request_id, exc)
        except (ConnectionError, BrokenPipeError, asyncio.CancelledError, concurrent.futures.CancelledError):
            raise
        except Exception as exc:  # a store that fails mid-way: the client learns it after the chunks sent
            log.exception("streaming a reply failed")
            last = protocol.error_reply(stream.request_id, NbschedError(f"Reading failed in the runner: {exc}."))
        writer.write(protocol.STREAM_END + last)

    def _taken(self, sending: concurrent.futures.Future) -> None:
        """Wait (in the stream's thread) until the client has taken a chunk; give up when the runner stops or the
        client takes nothing for ``STREAM_STALL_SECONDS``."""
        deadline = time.monotonic() + STREAM_STALL_SECONDS
        while True:
            try:
                sending.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if self.runner.stopping or time.monotonic() > deadline:
                    sending.cancel()
                    why = "the runner is stopping" if self.runner.stopping else "its reader took nothing for long"
                    raise RunnerError(f"The listing was given up: {why}; ask again.") from None

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Count a new connection. At ``max_clients``, close the connection idle longest to make room (its
        client reconnects when it next asks); refuse this one when every other is busy with a request."""
        self.open.add(writer)
        if len(self.open) <= self.max_clients:
            return True
        if self.idle:
            oldest = next(iter(self.idle))
            del self.idle[oldest]
            self.open.discard(oldest)
            oldest.transport.abort()
            log.warning("%d client connections open, the most kept; closing the one idle longest", self.max_clients)
            return True
        self.open.discard(writer)
        log.warning("%d client connections open, the most kept, all busy; refusing a new one", self.max_clients)
        error = RunnerError(
            f"The runner has {self.max_clients} client connections open, the most it keeps, all busy; "
            "close clients you no longer use and try again."
        )
        writer.write(protocol.error_reply(None, error))
        return False

    async def _answer(self, line: bytes) -> list[bytes | memoryview]:
        request_id = None
        try:
            message = protocol.parse_request(line)
            request_id = message.get("id")
            token = message.get("token")
            if (
                not isinstance(token, str)
                or not token
                or not self.runner.token
                or not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self.runner.token.encode())
            ):
                raise AuthError("Wrong or missing token: read it from the 'token' file in NBSCHED_HOME.")
            op = message["op"]
            if op not in protocol.OPERATIONS:
                raise ProtocolError(f"Unknown operation {op!r}; known: {', '.join(sorted(protocol.OPERATIONS))}.")
            handler = getattr(self.runner.operations, f"op_{op}", None)
            if handler is None:
                raise ProtocolError(f"Operation {op!r} is not available on this runner yet.")
            result = await handler(**checked_args(message.get("args") or {}, handler))
            if isinstance(result, protocol.Binary):  # header line, then the bytes as they are (no copy)
                return [result.header(request_id), memoryview(result.data)]
            if isinstance(result, protocol.Stream):  # made and sent a chunk at a time, by _stream
                result.request_id = request_id
                return [result]
            return [protocol.reply(request_id, result)]
        except NbschedError as exc:
            return [protocol.error_reply(request_id, exc)]
        except Exception as exc:  # a bug in one request must not take the runner down
            log.exception("request failed")
            return [
                protocol.error_reply(request_id, NbschedError(f"Internal error in the runner: {exc}. See runner.log."))
            ]


def client_cap(workers: int) -> int:
    """How many client connections to keep open: what the file limit leaves after the runner's own files,
    so that accepting a client, starting a worker or reading history never runs out of descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return config.MAX_CLIENTS
    return max(8, min(config.MAX_CLIENTS, soft - config.FD_RESERVE - config.FD_PER_WORKER * workers))


#: A reply part larger than this (a long history as Arrow) goes out in slices of this size, each sent
#: before the next: no copy of the whole into the transport's buffer.
SEND_SLICE = 1 << 22


async def _send(writer: asyncio.StreamWriter, part: bytes | memoryview) -> None:
    if len(part) <= SEND_SLICE:
        writer.write(part)
        return
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):  # a bigger kernel buffer: fewer wake-ups per slice
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_SLICE)
    view = memoryview(part)
    for start in range(0, len(view), SEND_SLICE):
        writer.write(view[start : start + SEND_SLICE])
        await writer.drain()


#: Bytes a client's socket is read at most at once. asyncio's default (256 KiB) is a fresh memory map per read (glibc
#: maps blocks above 128 KiB), grown, shrunk and unmapped again: five system calls and page faults per request.
READ_BYTES = 64 * 1024


def _read_less_at_once(transport: asyncio.BaseTransport) -> None:
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = READ_BYTES


async def _discard_rest_of_line(reader: asyncio.StreamReader) -> None:
    """Skip what is left of an oversized line, so the connection can go on with the next request."""
    while True:
        try:
            await reader.readline()
            return
        except (ValueError, asyncio.LimitOverrunError):
            continue
