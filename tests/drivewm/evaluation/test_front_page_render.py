"""The front page of a run folder from results files: found by their keys (unknown or corrupt files are
passed over), one section per evaluation with its headline verdicts and a relative link to its report,
ablations left to their report, the tally of verdicts on top."""

from __future__ import annotations

import json

from drivewm.evaluation.summary import StepRow, find_reports, write_front_page


def _closed_loop_results() -> dict:
    records = []
    for agent, base in (("autopilot", 92.0), ("cv-gt", 40.0), ("drivewm", 55.0), ("drivewm-noplan", 30.0)):
        for route in range(3):
            for seed in (0, 1):
                records.append(
                    {
                        "agent": agent,
                        "route_id": str(route),
                        "seed": seed,
                        "status": "Completed",
                        "driving_score": base + route + seed,
                        "route_completion": 100.0,
                        "counts": {"red_light": int(agent != "autopilot")},
                        "km_driven": 0.2,
                    }
                )
    return {"git_commit": "abc1234", "config": {}, "aggregate": {}, "records": records}


def test_front_page_of_a_folder(tmp_path):
    (tmp_path / "closed-loop").mkdir()
    (tmp_path / "closed-loop" / "results.json").write_text(json.dumps(_closed_loop_results()))
    (tmp_path / "closed-loop" / "report.html").write_text("<p id='scores'>x</p>")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.json").write_text(json.dumps({"something": "else"}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    found = find_reports(tmp_path)
    assert [(f.evaluation.title, f.folder) for f in found] == [("Closed loop", "closed-loop")]
    page = write_front_page(tmp_path, steps=[StepRow("closed loop", "12 s", "closed-loop/report.html")]).read_text()
    assert "<h2>Closed loop <small>(<a href='closed-loop/report.html'>full report</a>)</small></h2>" in page
    assert "href='closed-loop/report.html#scores'" in page
    # drivewm beats cv-gt by 15 on every (route, seed): met; the expert's 92.5 ± 0.6 ≥ 85: met; the
    # widest interval (± 1.4) can show a 10-point difference: met; success rates carry no target
    assert page.count("<span class='v met'>✓ met</span>") == 3 and "not met" not in page.split("pipeline")[0]
    assert "3 targets: 3 met." in page
    assert "drivewm-noplan" not in page  # the ablation stays in its report
    assert "commit abc1234; no learned checkpoint." in page


def test_front_page_without_results(tmp_path):
    page = write_front_page(tmp_path).read_text()
    assert "No evaluation results in this folder yet." in page and "No figure with a target was found." in page
