"""Real bad files and servers for the bad-input tests (issue 17): checkpoints (good, truncated, NaN
weights, a pickle that would run a command), a stand-in service on a local port that is not CARLA
(answers HTTP, or says nothing), a real CARLA-protocol stand-in (answers the version request as
LibCarla encodes it), and a tree snapshot to prove nothing was written where it should not be."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from drivewm.model.config import ModelConfig
from drivewm.model.world_model import DriveWorldModel
from tests.drivewm.synthetic_batches import TINY


def write_checkpoint(path: Path, nan_weights: bool = False) -> Path:
    """A drivewm checkpoint as Lightning writes it (`state_dict` with `model.` keys, the config in
    `hyper_parameters`) of the tiny model; `nan_weights` puts NaN into one backbone tensor (a diverged run)."""
    torch.manual_seed(0)
    config = ModelConfig(**TINY)
    model = DriveWorldModel(config)
    state = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    if nan_weights:
        name = next(k for k, v in state.items() if v.is_floating_point() and "backbone" in k)
        state[name][...] = float("nan")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": {"config": config.to_dict()}, "epoch": 0}, path)
    return path


def write_truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """The first `fraction` of `src`'s bytes (a download or copy that stopped)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


class _RunsACommand:
    """Unpickling this runs `touch <marker>` — what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious(path: Path, marker: Path) -> Path:
    """A torch checkpoint whose pickle calls `os.system` on load (refused by `weights_only=True`)."""
    torch.save({"state_dict": {"model.x": _RunsACommand(marker)}, "hyper_parameters": {"config": {}}}, path)
    return path


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


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under `root` (but `skip`)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if skip is not None and Path(dirpath).is_relative_to(skip):
            continue
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def temporaries(root: Path) -> list[Path]:
    """Every temporary file (`*.tmp`, `*.tmp.*`, `.*.tmp*`) under `root`."""
    return [p for p in root.rglob("*") if p.is_file() and ".tmp" in p.name]
