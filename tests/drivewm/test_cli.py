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


def test_argument_types_refuse_out_of_range_values(tmp_path):
    import argparse

    from drivewm.commands import args

    good = {
        args.positive_int: ("3", 3),
        args.non_negative_int: ("0", 0),
        args.positive_float: ("0.5", 0.5),
        args.non_negative_float: ("0", 0.0),
        args.fraction: ("1", 1.0),
        args.port: ("65535", 65535),
        args.size_wxh: ("400x225", (400, 225)),
        args.name_list: ("Town01, Town02", ("Town01", "Town02")),
        args.in_range(2.0, 10.0): ("2", 2.0),
        args.host: ("carla.local", "carla.local"),
    }
    for parse, (text, value) in good.items():
        assert parse(text) == value
    bad = {
        args.positive_int: ("0", "-1", "1.5", "x"),
        args.non_negative_int: ("-1",),
        args.positive_float: ("0", "-3", "nan", "inf"),
        args.non_negative_float: ("-0.1", "nan"),
        args.fraction: ("1.01", "-0.1"),
        args.port: ("0", "65536", "99999", "http"),
        args.size_wxh: ("2x2", "400", "axb"),
        args.name_list: ("", ",,"),
        args.in_range(2.0, 10.0): ("1.9", "50"),
        args.host: ("", "http://x", "a b", "h/p"),
    }
    for parse, texts in bad.items():
        for text in texts:
            with pytest.raises(argparse.ArgumentTypeError):
                parse(text)
    (tmp_path / "f").write_text("x")
    assert args.input_file(str(tmp_path / "f")) == str(tmp_path / "f")
    assert args.input_dir(str(tmp_path)) == str(tmp_path)
    # a missing input passes the parser (a pipeline parses its later steps first); the command checks it
    assert args.input_file(str(tmp_path / "later.ckpt")) == str(tmp_path / "later.ckpt")
    assert args.input_dir(str(tmp_path / "later")) == str(tmp_path / "later")
    assert args.output_dir(str(tmp_path / "new")) == str(tmp_path / "new")
    assert args.output_file(str(tmp_path / "r.json")) == str(tmp_path / "r.json")
    for parse, text, why in (
        (args.input_file, tmp_path, "is a directory"),
        (args.input_dir, tmp_path / "f", "is a file"),
        (args.output_dir, tmp_path / "f", "is an existing file"),
        (args.output_dir, tmp_path / "f" / "sub", "is a file"),
        (args.output_file, tmp_path, "is a directory"),
        (args.output_file, tmp_path / "f" / "r.json", "is a file"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            parse(str(text))
