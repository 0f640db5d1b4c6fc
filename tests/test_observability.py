"""Logging fit for a terminal and for Airflow, and the warnings a step reports."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import date

import pytest

from personalization.config import load_settings
from personalization.observability import StepReport, configure_logging, warnings_of
from personalization.pipeline import run_step


@pytest.fixture
def clean_root():
    """Restore the root logger and the quiet loggers' levels after a test."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    names = ("personalization", "great_expectations", "dbt", "httpx")
    levels = {n: logging.getLogger(n).level for n in names}
    yield root
    root.handlers[:], root.level = saved
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_inside_a_host_that_owns_the_handlers_no_handler_is_added(clean_root):
    before = list(clean_root.handlers)
    configure_logging(handler=False)
    configure_logging(handler=False)
    assert clean_root.handlers == before
    assert logging.getLogger("personalization").getEffectiveLevel() == logging.INFO
    for name in ("great_expectations", "dbt", "httpx"):
        assert logging.getLogger(name).level == logging.WARNING, name


def test_in_a_terminal_one_handler_is_added_however_often_it_is_configured(clean_root):
    configure_logging("INFO")
    configure_logging("INFO")
    ours = [h for h in clean_root.handlers if getattr(h, "_personalization", False)]
    assert len(ours) == 1


def test_great_expectations_import_chatter_is_silenced():
    code = ("from personalization.observability import configure_logging\n"
            "configure_logging('INFO')\n"
            "import logging, great_expectations\n"
            "logging.getLogger('personalization.x').info('after_import rows=1')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Skipping registering function" not in proc.stderr
    assert proc.stderr.count("after_import rows=1") == 1


@pytest.mark.parametrize(("report", "expected"), [
    (StepReport("build_marts", "2026-03-10", status="ok"), []),
    (StepReport("extract_crm.erasure_requests", "2026-03-10", status="empty"), []),
    (StepReport("build_marts", "2026-03-10", status="warn", details={"warnings": [
        "assert_orders_have_known_skus: Got 3 results, configured to warn if != 0"]}),
     ["assert_orders_have_known_skus: Got 3 results, configured to warn if != 0"]),
    (StepReport("build_segments", "2026-03-10", status="warn",
                details={"failed_segments": {"vip": "vip: Binder Error"}}),
     ["segment vip failed, previous export kept: vip: Binder Error"]),
    (StepReport("export", "2026-03-10", status="warning", details={"stale_segments": ["a", "b"]}),
     ["stale segments (previous files kept): a, b"]),
    (StepReport("sync_mailchimp", "2026-03-10", status="partial", rows_quarantined=4),
     ["4 record(s) failed to sync"]),
    (StepReport("score", "2026-03-10", status="warning"), ["status warning"]),
    # the intake's day file is absent whenever the intake is not in use
    (StepReport("extract_pixel.intake_events", "2026-03-10", status="skipped",
                details={"missing_file": "/intake/pixel/2026-03-10/events.jsonl",
                         "optional": True}), []),
])
def test_warnings_of_a_report_name_what_to_look_at(report, expected):
    assert warnings_of(report) == expected


def test_a_step_logs_each_warning_on_its_own_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PERSONALIZATION_REQUIRED_SOURCES", '["crm", "shop"]')
    settings = load_settings(home=tmp_path / "home")
    caplog.set_level(logging.INFO, logger="personalization")
    reports = run_step("extract_pixel", date(2026, 3, 10), settings)
    assert [r.status for r in reports] == ["skipped", "skipped"]  # landing file, intake file
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step_")]
    assert lines[0].startswith("step_done step=extract_pixel.events ds=2026-03-10 rows_in=0")
    assert lines[1].startswith("step_warning step=extract_pixel.events ds=2026-03-10 "
                               "warning=not delivered (source not required): ")
    assert lines[1].endswith("pixel/2026-03-10/events.jsonl.gz")
    # the intake not in use is no warning
    assert lines[2].startswith("step_done step=extract_pixel.intake_events") and len(lines) == 3


def test_a_step_collects_young_objects_less_often_and_restores_the_threshold(
        tmp_path, monkeypatch):
    """dbt and the sync make millions of short-lived objects: during a step the young
    generation is collected every YOUNG_COLLECTION_EVERY allocations, not every 700; the
    process's own threshold comes back after, also when the step fails."""
    import gc

    from personalization import pipeline

    seen = []

    def step(ds, settings):
        seen.append(gc.get_threshold())
        raise RuntimeError("the step broke")

    monkeypatch.setitem(pipeline.STEPS, "extract_pixel", step)
    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="the step broke"):
        run_step("extract_pixel", date(2026, 3, 10), load_settings(home=tmp_path / "home"))
    assert seen == [(pipeline.YOUNG_COLLECTION_EVERY, *before[1:])]
    assert pipeline.YOUNG_COLLECTION_EVERY > 10 * before[0]
    assert gc.get_threshold() == before


@pytest.mark.parametrize("configured", [False, True])
def test_leaked_semaphore_warnings_stay_off_stderr_once_configured(configured):
    """dbt leaves semaphores behind; Airflow files the tracker's stderr warning as an ERROR."""
    code = ("import multiprocessing, os, sys\n"
            "from personalization.observability import configure_logging\n"
            f"if {configured}: configure_logging(handler=False)\n"
            "locks = [multiprocessing.get_context('spawn').Lock() for _ in range(3)]\n"
            "os._exit(0)\n")  # no finalizers: the tracker sees the semaphores leaked
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert ("leaked semaphore" in proc.stderr) is not configured
