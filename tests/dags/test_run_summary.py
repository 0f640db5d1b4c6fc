"""The run summary, the notes made from it, and the Asset event extras, on hand-made inputs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from personalization.config import load_settings
from personalization.observability import StepReport
from personalization.orchestration.assets import event_extra, outlets_for
from personalization.orchestration.notes import notes_from_summary
from personalization.orchestration.tasks import step_result, summarize

STEPS = ["extract_crm", "build_marts", "score", "export"]


def _results() -> dict:
    marts = StepReport("build_marts", "2026-03-10", rows_out=40, status="warn", details={
        "warnings": ["assert_known_skus: Got 3 results, configured to warn if != 0",
                     "not_null_orders_email: Got 1 result, configured to warn if != 0"]})
    crm = [StepReport("extract_crm.contacts", "2026-03-10", rows_in=10, rows_out=9,
                      rows_quarantined=1),
           StepReport("extract_crm.erasure_requests", "2026-03-10", status="empty")]
    return {"extract_crm": step_result("extract_crm", date(2026, 3, 10), crm),
            "build_marts": step_result("build_marts", date(2026, 3, 10), [marts])}


def test_step_result_adds_up_the_reports_and_prefixes_each_warning_with_its_report():
    crm, marts = _results()["extract_crm"], _results()["build_marts"]
    assert (crm["rows_in"], crm["rows_out"], crm["rows_quarantined"], crm["status"]) == (
        10, 9, 1, "ok")
    assert crm["warnings"] == []  # an empty erasure file is a valid delivery
    assert marts["status"] == "warning" and marts["warnings"] == [
        "build_marts: assert_known_skus: Got 3 results, configured to warn if != 0",
        "build_marts: not_null_orders_email: Got 1 result, configured to warn if != 0"]


def test_a_run_with_a_failed_step_says_which_and_what_never_ran():
    states = {"extract_crm": "success", "build_marts": "success", "score": "failed",
              "export": "upstream_failed"}
    summary = summarize("2026-03-10", STEPS, _results(), states)
    assert summary["status"] == "failed"
    assert summary["failed"] == ["score", "export"]
    assert summary["with_warnings"] == ["build_marts"]
    assert [s["rows_out"] for s in summary["steps"]] == [9, 40, 0, 0]
    run_note, task_notes = notes_from_summary(summary)
    assert run_note == "⚠ 2026-03-10: 4 steps, 49 rows out; did not succeed: score, export"
    assert set(task_notes) == {"build_marts"}
    assert task_notes["build_marts"] == (
        "⚠ 2 warning(s):\n"
        "- build_marts: assert_known_skus: Got 3 results, configured to warn if != 0\n"
        "- build_marts: not_null_orders_email: Got 1 result, configured to warn if != 0")


def test_a_clean_run_gets_a_clean_note_and_no_task_notes():
    results = {"extract_crm": _results()["extract_crm"]}
    summary = summarize("2026-03-10", ["extract_crm"], results, {"extract_crm": "success"})
    assert summary["status"] == "ok"
    assert notes_from_summary(summary) == ("✓ 2026-03-10: 1 steps, 9 rows out; no warnings", {})


def test_long_warning_lists_are_cut_in_the_note_but_counted():
    summary = summarize("2026-03-10", ["gate_marts"], {"gate_marts": {
        "step": "gate_marts", "warnings": [f"w{i}" for i in range(20)]}}, {})
    note = notes_from_summary(summary)[1]["gate_marts"]
    assert note.startswith("⚠ 20 warning(s):\n- w0\n") and note.endswith("- ... and 5 more (see the log)")


def test_asset_events_carry_the_day_the_paths_and_the_counts(tmp_path: Path):
    settings = load_settings(home=tmp_path)
    crm = [StepReport("extract_crm.contacts", "2026-03-10", rows_out=9, rows_quarantined=1,
                      details={"path": "/lake/raw/crm/contacts/ds=2026-03-10"})]
    assert event_extra("extract_crm", "2026-03-10", crm, settings) == {
        "ds": "2026-03-10", "step": "extract_crm", "partitions": {"contacts": {
            "path": "/lake/raw/crm/contacts/ds=2026-03-10", "rows": 9, "rows_quarantined": 1,
            "status": "ok"}}}
    marts = event_extra("build_marts", "2026-03-10", [StepReport("build_marts", "2026-03-10",
                                                                 rows_out=40)], settings)
    assert marts == {"ds": "2026-03-10", "step": "build_marts", "stage": "marts",
                     "path": str(settings.warehouse_path), "models": 40}
    export = event_extra("export", "2026-03-10", [StepReport("export", "2026-03-10",
                                                             rows_out=123)], settings)
    assert export["path"] == str(settings.exports_dir / "2026-03-10") and export["rows"] == 123
    # a new source's extract gets its own lake Asset; steps that publish nothing get none
    assert [a.name for a in outlets_for("extract_esp")] == ["personalization_lake_esp"]
    assert outlets_for("gate_marts") == [] and outlets_for("sync") == []
