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


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path):
    """RLIMIT_FSIZE (a file-size limit, the cheap stand-in for a full disk) in a child process: the write
    fails with an OSError naming the target — not the temporary — and nothing is left behind."""
    import subprocess
    import sys

    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "from occupancy.atomic import write_json_atomic\n"
        "try:\n"
        f"    write_json_atomic({str(tmp_path / 'big.json')!r}, list(range(5000)))\n"
        "except OSError as err:\n"
        "    print(err.errno, err.filename)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["27", str(tmp_path / "big.json")]  # EFBIG
    assert os.listdir(tmp_path) == []


def test_orphans_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """kill -9 mid-write leaves `.<name>.<host>-<pid>.*.tmp`; the next successful write of that file
    removes it once its writer is gone, and keeps the temporaries of a writer still running."""
    import subprocess
    import sys

    from occupancy.atomic import _temp_prefix

    path = tmp_path / "r.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"{_temp_prefix(path, int(dead.stdout))}abc123.tmp"
    orphan.write_text("half")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = tmp_path / f"{_temp_prefix(path, alive.pid)}def456.tmp"
        busy.write_text("being written")
        write_json_atomic(path, {"ok": True})
        assert not orphan.exists() and busy.exists()
    finally:
        alive.kill()
        alive.wait()
    assert json.loads(path.read_text()) == {"ok": True}


def test_check_output_dir(tmp_path):
    from occupancy.atomic import check_output_dir

    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_dir(tmp_path) == tmp_path
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is an existing file"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(ValueError, match=f"{tmp_path / 'f'} is a file"):
        check_output_dir(tmp_path / "f" / "sub")
