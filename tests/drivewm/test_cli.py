"""`drivewm.cli`: the one boundary that turns an expected error into one line and exit status 2."""

import pytest

from drivewm.cli import ERROR_STATUS, UserError, main, run_guarded


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
    with pytest.raises(ZeroDivisionError):  # a bug is not an expected error: it keeps its traceback
        run_guarded("x", lambda: 1 / 0)


def test_main_labels_the_subcommand(capsys, tmp_path):
    assert main(["eval", "relevance", "--model", "nope", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("drivewm eval relevance: error: models must be among")
