"""A TCP proxy between an application and PostgreSQL that counts what the application sends.

It reads the client -> server half of the PostgreSQL wire protocol (v3): the untyped start-up
packets, then typed messages (one type byte, a 4-byte length). It counts

- `messages`: client messages by type: Q (simple query), P (parse), B (bind), D (describe),
  E (execute), S (sync), X (terminate), ... and `startup` for a start-up packet;
- `round_trips`: the times the client speaks again after the server has spoken, each flight
  counted once however many messages it carries (pipelined statements are one round trip),
  a flight holding only a Terminate not counted: the waits a request spends on the network;
- `connections`: connections accepted;

and in the server -> client half, the transactions that ended (ReadyForQuery 'Z' whose status
says no transaction is open after a statement ran): `commits` (ended without error, not by
ROLLBACK: an explicit COMMIT or a statement in its own implicit transaction, read-only ones
included, as pg_stat_database.xact_commit counts them) and `rollbacks`.

The stream must be plain: give the application `sslmode=disable&gssencmode=disable`.
It runs an asyncio loop in a daemon thread; its overhead is no concern, it is never timed.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections import Counter

UNTYPED = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered with one byte, no type


class CountingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.counts: Counter[str] = Counter()
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def snapshot(self) -> Counter[str]:
        return Counter(dict(self.counts))

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        server_r, server_w = await asyncio.open_connection(*self.target)
        state = {"server_spoke": True, "flight_counted": False, "one_byte_answers": 0}

        async def upstream() -> None:
            buffer = b""
            typed = False
            while data := await client_r.read(65536):
                if state["server_spoke"]:
                    state["server_spoke"] = False
                    state["flight_counted"] = False
                buffer += data
                while True:
                    if not typed:
                        if len(buffer) < 8:
                            break
                        length, code = struct.unpack("!ii", buffer[:8])
                        if len(buffer) < length:
                            break
                        kind = "startup"
                        typed = code not in UNTYPED
                        if not typed:
                            state["one_byte_answers"] += 1
                        buffer = buffer[length:]
                    else:
                        if len(buffer) < 5:
                            break
                        length = struct.unpack("!i", buffer[1:5])[0]
                        if len(buffer) < 1 + length:
                            break
                        kind = chr(buffer[0])
                        buffer = buffer[1 + length :]
                    self.counts[kind] += 1
                    if kind != "X" and not state["flight_counted"]:
                        state["flight_counted"] = True
                        self.counts["round_trips"] += 1
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            buffer = b""
            ran = failed = False
            last_tag = b""
            while data := await server_r.read(65536):
                state["server_spoke"] = True
                buffer += data
                while True:
                    if state["one_byte_answers"] and buffer:  # 'N' or 'S' to an SSL request
                        state["one_byte_answers"] -= 1
                        buffer = buffer[1:]
                        continue
                    if len(buffer) < 5:
                        break
                    length = struct.unpack("!i", buffer[1:5])[0]
                    if len(buffer) < 1 + length:
                        break
                    kind, body = buffer[:1], buffer[5 : 1 + length]
                    buffer = buffer[1 + length :]
                    if kind == b"C":  # CommandComplete
                        ran, last_tag = True, body.rstrip(b"\0").split(b" ")[0]
                    elif kind == b"E":  # ErrorResponse
                        ran = failed = True
                    elif kind == b"Z":  # ReadyForQuery: I idle, T in a block, E failed block
                        if body == b"I" and ran:
                            ended = "rollbacks" if failed or last_tag == b"ROLLBACK" else "commits"
                            self.counts[ended] += 1
                        if body == b"I":
                            ran = failed = False
                            last_tag = b""
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            client_w.close()
            server_w.close()
