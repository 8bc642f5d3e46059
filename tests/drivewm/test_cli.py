"""`drivewm.cli`: the one boundary that turns an expected error into one line and exit status 2."""

import pytest

from drivewm.cli import ERROR_STATUS, INTERNAL_ERROR_STATUS, UserError, main, run_guarded


def test_expected_errors_are_one_line_and_status_2(capsys):
    def bad(kind):
        def command():
            raise kind("the field 'x' is wrong")

        return command

    for kind in (UserError, ValueError, FileNotFoundError):
        assert run_guarded("eval relevance", bad(kind)) == ERROR_STATUS == 2
        err = capsys.readouterr().err
        assert err == "drivewm eval relevance: error: the field 'x' is wrong\n"
    assert run_guarded("x", lambda: None) == 0 and run_guarded("x", lambda: 3) == 3
    # a bug is not an expected error: one line saying so (status 1), its traceback under --debug only
    assert run_guarded("x", lambda: 1 / 0) == INTERNAL_ERROR_STATUS == 1
    err = capsys.readouterr().err
    assert err.startswith("drivewm x: internal error: ZeroDivisionError") and "--debug" in err
    assert len(err.splitlines()) == 1
    with pytest.raises(ZeroDivisionError):
        run_guarded("x", lambda: 1 / 0, debug=True)


def test_os_errors_name_the_file_and_the_cause(tmp_path, capsys):
    def full_disk():
        raise OSError(28, "No space left on device", str(tmp_path / "out.json"))

    assert run_guarded("data generate", full_disk) == 2
    err = capsys.readouterr().err
    assert err == f"drivewm data generate: error: No space left on device: {tmp_path / 'out.json'} (the disk is full)\n"

    def interrupted():
        raise KeyboardInterrupt

    assert run_guarded("fit", interrupted) == 130
    assert capsys.readouterr().err == "drivewm fit: interrupted\n"


def test_main_labels_the_subcommand(capsys, tmp_path):
    assert main(["eval", "relevance", "--model", "nope", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("drivewm eval relevance: error: models must be among")
