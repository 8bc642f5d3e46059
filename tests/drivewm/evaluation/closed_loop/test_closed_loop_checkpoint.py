"""The resumable results checkpoint: parallel appends lose nothing, a key is replaced, corruption is named."""

import json
import multiprocessing as mp

import pytest

from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint


def _append_many(path: str, worker: int, n: int) -> None:
    ckpt = ResultsCheckpoint(path)
    for i in range(n):
        ckpt.append([{"agent": "a", "route_id": f"{worker}-{i}", "seed": 0, "score": i}])


def test_checkpoint_parallel_appends_lose_nothing(tmp_path):
    path = str(tmp_path / "results.json")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    records = ResultsCheckpoint(path).load()
    assert len(records) == 45
    assert len({r["route_id"] for r in records}) == 45


def test_checkpoint_replaces_same_key_and_reports_corruption(tmp_path):
    ckpt = ResultsCheckpoint(tmp_path / "r.json")
    assert ckpt.load() == []
    ckpt.append([{"agent": "a", "route_id": "0", "seed": 1, "score": 0.1}])
    ckpt.append([{"agent": "a", "route_id": "0", "seed": 1, "score": 0.9}])
    assert [r["score"] for r in ckpt.load()] == [0.9]
    assert ckpt.finished_keys() == {("a", "", "0", "", 1)}  # no run id / route digest: a legacy record
    with pytest.raises(ValueError, match="route_id"):
        ckpt.append([{"agent": "a", "seed": 1}])
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ckpt.load()
    (tmp_path / "r.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(ValueError, match="records"):
        ckpt.load()


def test_requests_scope_what_load_returns_and_keys_separate_runs(tmp_path):
    """A rerun with another request shows only the requested runs; a different run id (another
    checkpoint, route length, rule set …) is a different key, so it never replaces nor hides the other."""
    ckpt = ResultsCheckpoint(tmp_path / "r.json")
    rec = {"agent": "a", "run_id": "R1", "route_digest": "D0", "seed": 0}
    ckpt.append([{**rec, "route_id": str(i), "score": i} for i in range(3)])
    ckpt.append([{"agent": "b", "run_id": "X", "route_id": "0", "route_digest": "D0", "seed": 0}])
    assert len(ckpt.load()) == 4  # no request yet: everything
    ckpt.set_request("a", [("R1", "1", "D0", 0)])
    assert [(r["agent"], r["route_id"]) for r in ckpt.load()] == [("a", "1"), ("b", "0")]
    assert len(ckpt.load_all()) == 4  # nothing is lost
    ckpt.append([{**rec, "run_id": "R2", "route_id": "1", "score": 99}])  # same route, another run
    assert len(ckpt.load_all()) == 5
    assert [r["score"] for r in ckpt.load() if r["agent"] == "a"] == [1]
    ckpt.set_request("a", [("R2", "1", "D0", 0)])
    assert [r["score"] for r in ckpt.load() if r["agent"] == "a"] == [99]
    assert ("a", "R1", "1", "D0", 0) in ckpt.finished_keys() and ("a", "R2", "1", "D0", 0) in ckpt.finished_keys()
