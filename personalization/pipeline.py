"""The nightly flow as named steps. `personalization run` and the Airflow DAG call the same
functions; each step is idempotent for its logical date `ds`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta

from personalization.config import SOURCES, Settings
from personalization.observability import StepReport, log_event

logger = logging.getLogger(__name__)

StepFn = Callable[[date, Settings], list[StepReport]]


def _as_list(result: StepReport | list[StepReport]) -> list[StepReport]:
    return result if isinstance(result, list) else [result]


def extract(source: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        from personalization.extract import extract_source

        return _as_list(extract_source(source, ds, settings))

    step.__name__ = f"extract_{source}"
    return step


def build(stage: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        from personalization.warehouse import build as dbt_build

        return _as_list(dbt_build(ds, stage, settings))

    step.__name__ = f"build_{stage}"
    return step


def gate(stage: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        from personalization.quality import gate as quality_gate

        return _as_list(quality_gate(ds, stage, settings))

    step.__name__ = f"gate_{stage}"
    return step


def score(ds: date, settings: Settings) -> list[StepReport]:
    from personalization.scoring import score as score_customers

    return _as_list(score_customers(ds, settings))


def trigger_context(ds: date, settings: Settings) -> list[StepReport]:
    from personalization.triggers import publish_context

    return _as_list(publish_context(ds, settings))


def export(ds: date, settings: Settings) -> list[StepReport]:
    from personalization.export import publish

    return _as_list(publish(ds, settings))


def privacy(name: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        import personalization.privacy as privacy_steps

        return _as_list(getattr(privacy_steps, name)(ds, settings))

    step.__name__ = name
    return step


def sync(ds: date, settings: Settings) -> list[StepReport]:
    from personalization.esp import sync as esp_sync

    reports: list[StepReport] = []
    for esp in settings.esp_targets:
        reports += _as_list(esp_sync(ds, esp, settings))
    return reports


# Order matters: DuckDB has one writer, so warehouse steps run one after another.
STEPS: dict[str, StepFn] = {
    **{f"extract_{s}": extract(s) for s in SOURCES},
    "gate_lake": gate("lake"),
    # Data re-delivered for someone erased earlier leaves before anything is built on it.
    "erase_arrivals": privacy("erase_arrivals"),
    "build_marts": build("marts"),
    "gate_marts": gate("marts"),
    "publish_trigger_context": trigger_context,
    "score": score,
    "build_segments": build("segments"),
    "gate_segments": gate("segments"),
    "export": export,
    # After the export (which reads tonight's erasure requests for the ESPs) and before the
    # sync: persons erased tonight leave every copy; the ledger keeps their hashes.
    "erase": privacy("erase"),
    "sync": sync,
    # Once every ESP confirmed a deletion, the requester's plain email is dropped too.
    "purge_erasure_requests": privacy("purge_erasure_requests"),
    "enforce_retention": privacy("enforce_retention"),
}


def run_step(name: str, ds: date, settings: Settings) -> list[StepReport]:
    """Run one named step for `ds` and log its counts."""
    reports = STEPS[name](ds, settings)
    for r in reports:
        log_event(logger, "step_done", step=r.step, ds=r.ds, rows_in=r.rows_in,
                  rows_out=r.rows_out, rows_quarantined=r.rows_quarantined,
                  seconds=r.seconds, status=r.status)
    return reports


def date_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
