"""Warnings made visible in the Airflow UI as notes, once a nightly run has finished.

A task cannot set its own note in Airflow 3 (tasks talk to the execution API, which has no
note endpoint). So a scheduler listener (registered by `plugin.PersonalizationPlugin`) reads
the run summary the `run_summary` task pushed (XCom key `summary`, also when the run failed)
and sets:
- a note on every task that ended with warnings (the warning lines), and
- a note on the run (the day, the verdict, which steps warned or failed).

Notes a person wrote are left alone: only empty notes and notes this module wrote (they start
with `MARK`) are replaced.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from personalization.observability import log_event

logger = logging.getLogger(__name__)
MARK = "⚠ "  # warnings; a clean run's note starts with CLEAN_MARK
CLEAN_MARK = "✓ "
MAX_LINES = 15


def notes_from_summary(summary: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The run note and the task notes (task_id -> note) for a run summary."""
    steps = summary.get("steps") or []
    task_notes = {}
    for s in steps:
        if s.get("warnings"):
            lines = s["warnings"][:MAX_LINES]
            more = len(s["warnings"]) - len(lines)
            task_notes[s["step"]] = (f"{MARK}{len(s['warnings'])} warning(s):\n"
                                     + "\n".join(f"- {w}" for w in lines)
                                     + (f"\n- ... and {more} more (see the log)" if more else ""))
    rows_out = sum(int(s.get("rows_out") or 0) for s in steps)
    head = f"{summary.get('ds')}: {len(steps)} steps, {rows_out:,} rows out"
    if summary.get("failed"):
        run_note = f"{MARK}{head}; did not succeed: {', '.join(summary['failed'])}"
    elif summary.get("with_warnings"):
        run_note = f"{MARK}{head}; warnings in: {', '.join(summary['with_warnings'])}"
    else:
        run_note = f"{CLEAN_MARK}{head}; no warnings"
    return run_note, task_notes


def _ours(note: str | None) -> bool:
    return not note or note.startswith((MARK, CLEAN_MARK))


def apply_notes(dag_run: Any, session: Any) -> int:
    """Set the notes of a finished run from its `run_summary` XCom; returns notes written."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    from personalization.orchestration.tasks import SUMMARY_KEY, SUMMARY_TASK

    row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id,
                                             task_ids=SUMMARY_TASK, key=SUMMARY_KEY)).first()
    if row is None:
        return 0  # no summary (its task never ran): nothing to say beyond the states
    summary = XComModel.deserialize_value(row)
    run_note, task_notes = notes_from_summary(summary)
    written = 0
    if _ours(dag_run.note):
        dag_run.note = run_note
        written += 1
    tis = session.scalars(select(TaskInstance).where(
        TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)).all()
    for ti in tis:
        wanted = task_notes.get(ti.task_id)
        if _ours(ti.note) and ti.note != wanted:
            ti.note = wanted
            written += 1
    return written


def _on_finished(dag_run: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    try:
        session = object_session(dag_run)
        if session is not None:
            apply_notes(dag_run, session)  # the scheduler's transaction commits it
            return
        with create_session() as own:  # detached (dag.test()): read the run afresh
            attached = own.scalar(select(DagRun).where(DagRun.dag_id == dag_run.dag_id,
                                                       DagRun.run_id == dag_run.run_id))
            if attached is not None:
                apply_notes(attached, own)
    except Exception as e:  # a note is a courtesy: never disturb the scheduler
        log_event(logger, "run_notes_failed", logging.WARNING, dag_id=dag_run.dag_id,
                  run_id=dag_run.run_id, error=f"{type(e).__name__}: {e}")


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _on_finished(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _on_finished(dag_run)
