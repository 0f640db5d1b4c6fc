"""The harness's result files: a second run on one day keeps the first run's file, and the
report takes the day's last run (a second 1M run of 2026-12-07 overwrote the first)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from benchmarks import report, run


def test_a_second_run_of_the_day_gets_its_own_file_and_the_report_takes_it(tmp_path, monkeypatch):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    monkeypatch.setattr(run, "REPO", tmp_path)
    day = date.today().isoformat()
    first = run._results_path(1000)
    assert first.name == f"{day}-1000.json"
    first.write_text("{}")
    second = run._results_path(1000)
    assert second.name == f"{day}-1000-r2.json"
    second.write_text("{}")
    assert run._results_path(1000).name == f"{day}-1000-r3.json"

    names = ["2026-12-07-1000000-r2.json", "2026-12-07-1000000.json",
             "2026-12-07-1000000-first.json", "2026-12-06-1000000.json",
             "2026-12-06-1000000-fifth-session.json", "2026-12-08-1000000.json"]
    ordered = [p.name for p in sorted(map(Path, names), key=report._run_order)]
    assert ordered == ["2026-12-06-1000000-fifth-session.json", "2026-12-06-1000000.json",
                       "2026-12-07-1000000-first.json", "2026-12-07-1000000.json",
                       "2026-12-07-1000000-r2.json", "2026-12-08-1000000.json"]
