"""Does a port speak CARLA's protocol? Asked with a plain socket before `carla.Client` ever touches it.

The CARLA client library (LibCarla, C++) aborts the whole process when the service behind the port
answers something it cannot decode — an HTTP server on port 2000 ends Python with SIGABRT (exit
134) and no message. So the port is probed first, in Python, exactly as the client's first call does
it: LibCarla's `Client::GetServerVersion()` is the RPC call `"version"` with no arguments over rpclib,
i.e. the msgpack-rpc request `[0, msgid, "version", []]`; the server answers
`[1, msgid, nil, result]`, where `result` is a `carla::rpc::Response<std::string>` — `MSGPACK_DEFINE_ARRAY`
of a `variant<ResponseError, std::string>`, packed as `[[index, value]]` with index 1 for a value
(LibCarla `client/detail/Client.cpp`, `rpc/Response.h`, `MsgPackAdaptors.h`). Anything else — a
refused or unresolvable address, silence until the timeout, bytes that are not that answer — is one
`CarlaServerUnavailable` line naming the address and what answered.

The msgpack subset needed here (arrays, strings, small integers, nil, booleans, binaries) is decoded
by hand: the `msgpack` package is not a dependency.
"""

from __future__ import annotations

import socket
import struct
import time


class CarlaServerUnavailable(ConnectionError):
    """No CARLA server answered at the given address within the timeout (or something else did)."""


class _Incomplete(Exception):
    """The buffer ends inside a msgpack value: read more."""


VERSION_REQUEST_ID = 7


def version_request(msgid: int = VERSION_REQUEST_ID) -> bytes:
    """The msgpack-rpc request `[0, msgid, "version", []]` (msgid < 128)."""
    method = b"version"
    return bytes([0x94, 0x00, msgid, 0xA0 | len(method)]) + method + bytes([0x90])


def _unpack(buf: bytes, i: int = 0) -> tuple[object, int]:
    """Decode one msgpack value of the supported subset at `buf[i:]`: (value, next index)."""

    def need(n: int) -> None:
        if i + n > len(buf):
            raise _Incomplete

    need(1)
    b = buf[i]
    i += 1
    if b <= 0x7F:
        return b, i
    if b >= 0xE0:
        return b - 0x100, i
    if 0x90 <= b <= 0x9F:
        return _unpack_array(buf, i, b & 0x0F)
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        need(n)
        return buf[i : i + n].decode("utf-8", "replace"), i + n
    if b == 0xC0:
        return None, i
    if b in (0xC2, 0xC3):
        return b == 0xC3, i
    fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if b in fixed:
        n = struct.calcsize(fixed[b])
        need(n)
        return struct.unpack_from(fixed[b], buf, i)[0], i + n
    sized = {0xD9: ">B", 0xDA: ">H", 0xDB: ">I", 0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}
    if b in sized:
        m = struct.calcsize(sized[b])
        need(m)
        n = struct.unpack_from(sized[b], buf, i)[0]
        i += m
        need(n)
        raw = buf[i : i + n]
        return (raw.decode("utf-8", "replace") if b >= 0xD9 else raw), i + n
    if b in (0xDC, 0xDD):
        m = 2 if b == 0xDC else 4
        need(m)
        n = struct.unpack_from(">H" if m == 2 else ">I", buf, i)[0]
        return _unpack_array(buf, i + m, n)
    raise ValueError(f"unexpected msgpack byte 0x{b:02x}")


def _unpack_array(buf: bytes, i: int, n: int) -> tuple[list, int]:
    out = []
    for _ in range(n):
        value, i = _unpack(buf, i)
        out.append(value)
    return out, i


def parse_version_response(buf: bytes, msgid: int = VERSION_REQUEST_ID) -> str:
    """The server version in CARLA's answer to `version_request`; `ValueError` if `buf` is not that
    answer, `_Incomplete` if it may still become one."""
    if buf and buf[0] != 0x94:
        raise ValueError("not a msgpack-rpc response")
    value, _ = _unpack(buf)
    if not (isinstance(value, list) and len(value) == 4 and value[0] == 1 and value[1] == msgid):
        raise ValueError("not a msgpack-rpc response to the version request")
    error, result = value[2], value[3]
    if error is not None:
        raise ValueError(f"the server refused the version request: {error!r}")
    # Response<std::string> = [variant] = [[index, value]]; index 0 is a ResponseError [message]
    if isinstance(result, list) and len(result) == 1 and isinstance(result[0], list) and len(result[0]) == 2:
        index, payload = result[0]
        if index == 1 and isinstance(payload, str):
            return payload
        if index == 0:
            raise ValueError(f"the server answered the version request with an error: {payload!r}")
    raise ValueError(f"unexpected answer to the version request: {result!r}")


def _printable(data: bytes, limit: int = 40) -> str:
    text = data[:limit].decode("latin-1")
    return "".join(c if c.isprintable() else "." for c in text) + ("…" if len(data) > limit else "")


def probe_carla(host: str, port: int, timeout_s: float) -> str:
    """The version string of the CARLA server at `host:port`; `CarlaServerUnavailable` naming the
    address and the reason otherwise (see the module docstring). Waits at most about `timeout_s`."""
    where = f"{host}:{port}"
    advice = "start one (./CarlaUE4.sh -RenderOffScreen) or use --backend lite"
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"CARLA port must lie in 1–65535, got {port}")
    if not timeout_s > 0:
        raise ValueError(f"CARLA timeout must be positive, got {timeout_s}")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise CarlaServerUnavailable(f"cannot resolve the CARLA host {host!r} ({err.strerror})") from None
    deadline = time.monotonic() + float(timeout_s)
    try:
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            sock.connect(address)
            sock.sendall(version_request())
            buf = b""
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    what = f"answered {_printable(buf)!r} and closed" if buf else "closed the connection"
                    raise CarlaServerUnavailable(
                        f"the service at {where} is not a CARLA server: it {what} on CARLA's version request"
                    )
                buf += chunk
                try:
                    return parse_version_response(buf)
                except _Incomplete:
                    continue
                except ValueError as err:
                    raise CarlaServerUnavailable(
                        f"the service at {where} is not a CARLA server ({err}; it answered {_printable(buf)!r})"
                    ) from None
    except TimeoutError:
        raise CarlaServerUnavailable(
            f"no CARLA server answered at {where} within {timeout_s:g} s (no answer to CARLA's version request); "
            + advice
        ) from None
    except ConnectionRefusedError:
        raise CarlaServerUnavailable(f"no CARLA server answered at {where} (connection refused); {advice}") from None
    except CarlaServerUnavailable:
        raise
    except OSError as err:
        raise CarlaServerUnavailable(
            f"no CARLA server answered at {where} ({err.strerror or type(err).__name__}); {advice}"
        ) from None


__all__ = ["CarlaServerUnavailable", "parse_version_response", "probe_carla", "version_request"]
