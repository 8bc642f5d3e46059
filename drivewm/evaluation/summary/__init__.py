"""The front page of a run folder: every evaluation's headline figures with their verdicts."""

from drivewm.evaluation.summary.front_page import EVALUATIONS, StepRow, find_reports, write_front_page

__all__ = ["EVALUATIONS", "StepRow", "find_reports", "write_front_page"]
