"""`occupancy.atomic`: every writer's temp file + rename; a failed write changes nothing and leaves nothing."""

import json
import os

import pytest

from occupancy.atomic import atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_writes_create_parents_and_replace(tmp_path):
    path = tmp_path / "a" / "b" / "r.json"
    assert write_json_atomic(path, {"x": [1, 2]}) == path
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    write_text_atomic(path, "é\n")
    assert path.read_bytes() == "é\n".encode()
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and os.listdir(path.parent) == ["r.json"]
    write_json_atomic(path, {"p": tmp_path}, indent=1, default=str)
    assert json.loads(path.read_text()) == {"p": str(tmp_path)} and path.read_text().startswith("{\n ")


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_json_atomic(path, {"p": tmp_path})  # a Path is not JSON without default=str
    with pytest.raises(RuntimeError, match="boom"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".r.json.") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert path.read_text() == "old"  # nobody sees the new file before the rename
    assert path.read_text() == "new"
