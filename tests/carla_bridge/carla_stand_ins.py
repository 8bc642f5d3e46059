"""Stand-ins on a local port for what may answer where a CARLA server is expected: a web server, a
silent service, and a CARLA-protocol speaker that answers the client's version request exactly as a
CARLA 0.9.15 server encodes it (so the real `carla.Client` talks to it)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def pack_carla_version(msgid: int, version: str) -> bytes:
    """CARLA's answer to the `version` RPC: `[1, msgid, nil, [[1, version]]]` (rpclib response whose
    result is a `carla::rpc::Response<std::string>`: `MSGPACK_DEFINE_ARRAY` of a variant packed as
    [index, value] — LibCarla `rpc/Response.h`, `MsgPackAdaptors.h`)."""
    raw = version.encode()
    assert msgid < 128 and len(raw) < 32
    return bytes([0x94, 0x01, msgid, 0xC0, 0x91, 0x92, 0x01, 0xA0 | len(raw)]) + raw


@contextmanager
def local_service(mode: str) -> Iterator[int]:
    """A TCP service on 127.0.0.1 (yields its port) that is `"http"` (answers any request with an HTTP
    400, as a web server on the CARLA port would), `"silent"` (accepts and never answers) or
    `"carla"` (answers CARLA's version request like a CARLA 0.9.15 server)."""
    from carla_bridge.live.probe import _unpack

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(0.2)
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                if mode == "http":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                if mode == "carla":
                    try:
                        request, used = _unpack(buf)
                    except Exception:
                        continue
                    buf = buf[used:]
                    conn.sendall(pack_carla_version(int(request[1]), "0.9.15"))

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()
