"""The main command's pipeline: every step is a real `drivewm` command line that the real parser accepts."""

import yaml

from drivewm.cli import build_parser
from drivewm.commands.demo import pipeline, training_config, write_index


def test_every_demo_step_parses_with_the_real_cli(tmp_path):
    for quick in (True, False):
        steps = pipeline(tmp_path / ("q" if quick else "full"), quick)
        names = [s.name for s in steps]
        assert names[0] == "generate dataset" and "train tiny model" in names
        assert {"closed loop: autopilot", "closed loop: cv-gt", "closed loop: drivewm"} <= set(names)
        parser = build_parser()
        for step in steps:
            if step.args[0] == "fit":  # LightningCLI parses its own arguments
                assert step.args[1] == "-c"
                continue
            args = parser.parse_args(list(step.args))
            assert callable(args.func), step.name


def test_training_config_puts_every_output_under_the_run(tmp_path):
    path = training_config(tmp_path / "train", max_steps=7)
    config = yaml.safe_load(path.read_text())
    trainer = config["trainer"]
    assert trainer["max_steps"] == 7
    assert trainer["default_root_dir"] == str(tmp_path / "train")
    dirpaths = [c["init_args"]["dirpath"] for c in trainer["callbacks"] if "dirpath" in c.get("init_args", {})]
    assert dirpaths == [str(tmp_path / "train" / "checkpoints")]


def test_index_links_existing_reports(tmp_path):
    steps = pipeline(tmp_path, quick=True)
    (tmp_path / "open-loop").mkdir()
    (tmp_path / "open-loop" / "report.html").write_text("<html></html>")
    html = write_index(tmp_path, steps, {"open-loop report": 12.0}).read_text()
    assert "href='open-loop/report.html'" in html
    assert "relevance/report.html" not in html
