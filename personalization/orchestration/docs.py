"""Operator docs shown in the Airflow UI (DAG Docs tab, task Details -> Docs).

Task docs come from the step functions' docstrings in `personalization.pipeline`, which say
what a step reads, writes, and what to do when it fails; a new step documents itself there.
"""

from __future__ import annotations

import inspect

RUNBOOK = "docs/operations.md"

NIGHTLY_DOC = f"""
### Nightly email-personalization run

**Which day**: a run processes the business day `ds` = its logical date. The run for day D
(data interval D 00:00 to D+1 00:00 UTC) is created just after midnight ending D. A manual
trigger for a date processes that date (logical date at 00:00); the trigger form's default
"now", or no logical date, processes the last day that has ended. The first task,
`business_day`, logs the day and fails at once for a day that has not ended.

**Flow**: `business_day` -> the extracts in parallel -> the warehouse steps one after another
-> `run_summary` (counts and warnings of every step; warnings also become task and run notes).

**Rerun a day**: clear the run, or a task "and downstream". A second trigger for a date that
already has a run is refused (409 Conflict): clear that run instead.

**When a task fails**: its Docs say what it reads, writes and what to do; an alert goes to the
`personalization_alerts` connection (log only when it is not set). Warehouse tasks share the
one-slot pool `personalization_warehouse`, also with `personalization_retrain`.

Runbook: `{RUNBOOK}` in the repository (sections *Airflow*, *When a task fails*, *Backfills
and reruns*).
"""

RETRAIN_DOC = f"""
### Retraining of the VIP and churn models

Runs after every published export (Asset `personalization_export`) for the day in the
event, and retrains only when the newest model is older than `retrain_every_days` (else
`train` is skipped). Trigger it with `{{"force": true}}` to retrain now. `train` reads the
warehouse, so it takes the `personalization_warehouse` pool slot and never overlaps a
nightly warehouse step. Runbook: `{RUNBOOK}`, section *Retraining*.
"""

_TASK_DOCS = {
    "business_day": """Resolve the business day this run processes and log it.

    Reads: the run's logical date and run_after.
    Writes: nothing (the day is this task's XCom).
    When it fails: the day has not ended, so its files cannot exist: trigger again with the
    logical date of an earlier day at 00:00, or without a logical date.
    """,
    "run_summary": """Summarise the run: one line per step with counts and warnings.

    Reads: every step's XCom (counts, warnings) and state.
    Writes: its XCom (the summary); the scheduler turns it into task and run notes.
    When it fails: a step did not succeed; this task only reports it. Fix and clear that
    step (with downstream), and this task runs again.
    """,
    "train": """Retrain the VIP and churn models as of the business day (when due or forced).

    Reads: the warehouse (read-only; takes the warehouse pool slot), the model registry.
    Writes: a new model version under `<models>/` (approved only if it beats the baselines).
    When it fails: the error says why (too little history is a skip, not a failure); the
    nightly `score` keeps using the last approved model meanwhile. Fix, then clear.
    """,
}


def step_doc(name: str) -> str:
    """Markdown for one task: summary, then Reads / Writes / When it fails as a list."""
    from personalization.pipeline import STEPS

    raw = _TASK_DOCS.get(name) or (STEPS[name].__doc__ if name in STEPS else None)
    if not raw:
        return f"`{name}`: no documentation yet. See {RUNBOOK}."
    summary, _, body = inspect.cleandoc(raw).partition("\n\n")
    items, current = [], ""
    for line in body.splitlines():
        if line.startswith(("Reads:", "Writes:", "When it fails:")):
            if current:
                items.append(current)
            label, _, rest = line.partition(":")
            current = f"- **{label}**:{rest}"
        elif current:
            current += " " + line.strip()
    if current:
        items.append(current)
    return f"{summary}\n\n" + "\n".join(items) + f"\n\nRunbook: `{RUNBOOK}`."
