"""The nightly flow as named steps. `personalization run` and the Airflow DAG call the same
functions; each step is idempotent for its logical date `ds`."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from personalization.config import SOURCES, Settings
from personalization.diskspace import out_of_space_line
from personalization.exceptions import DiskSpaceError, WarehouseLockedError
from personalization.observability import StepReport, log_event, warnings_of
from personalization.warehouse.lock import ensure_unlocked, lock_error_line

logger = logging.getLogger(__name__)

StepFn = Callable[[date, Settings], list[StepReport]]

_BUILD_DOCS = {
    "marts": """dbt build of the marts: staging, identity resolution, profiles, orders, RFM.

    Reads: the lake (`<lake>/raw/...`, every `ds` up to this one), dbt seeds.
    Writes: the warehouse (`warehouse.duckdb`): staging, intermediate and public marts;
    dbt tests run on them (a test that warns is named in the log and the run summary).
    When it fails: the log names each failing model or test with dbt's message, one line
    each; fix the model or the data, then clear the task. A "warehouse is locked" error
    names the process holding DuckDB's single write lock: let it finish or stop it.
    """,
    "segments": """dbt build of the scores table, every segment and the membership history.

    Reads: the marts and `<scores>/ds=<ds>/customer_scores.parquet`.
    Writes: the warehouse: `customer_scores`, one table per segment,
    `segment_membership_history`. A segment whose SQL or tests fail does not stop the
    others: it is reported as a warning and the export keeps its previous files.
    When it fails: scores or the history failed; the log names the node and dbt's message.
    Fix, then clear the task.
    """,
}
_PRIVACY_WHEN_IT_FAILS = """When it fails: the error names the area and file; fix, then clear
    the task (like every step it is idempotent for `ds`, so a rerun finishes the job). The
    reports under `<home>/privacy/reports/<ds>/` say what was done; see docs/privacy.md."""
_PRIVACY_DOCS = {
    "erase_arrivals": f"""Remove data re-delivered for persons erased earlier, before anything is built.

    Reads: the erasure ledger, this `ds`'s lake partitions, quarantine and landing files.
    Writes: those partitions and files without the erased persons' rows; a report under
    `<home>/privacy/reports/<ds>/erase_arrivals.json`.
    {_PRIVACY_WHEN_IT_FAILS}
    """,
    "erase": f"""Erase tonight's erasure requests from every copy; record them in the ledger.

    Reads: erasure requests up to `ds`, the warehouse (who the requesters are), the ledger.
    Writes: the hashed ledger; lake, quarantine, landing copy, past exports, ESP drops,
    scores and every warehouse table without those persons; a report under
    `<home>/privacy/reports/<ds>/erase.json`.
    {_PRIVACY_WHEN_IT_FAILS}
    """,
    "purge_erasure_requests": f"""Drop confirmed requesters' plain emails once every ESP deleted them.

    Reads: the sync log's deletion confirmations, the ledger.
    Writes: the lake's erasure requests, the landing copy, every `erasures.csv` in exports
    and drops, without those emails; a report under `<home>/privacy/reports/<ds>/`.
    {_PRIVACY_WHEN_IT_FAILS}
    """,
    "enforce_retention": f"""Delete what is past its retention window, counted back from `ds`.

    Reads: the retention settings (`PERSONALIZATION_RETENTION_*`), folder and partition dates.
    Writes: removes old pixel partitions (and their warehouse events), quarantine, exports,
    drops, logs and reports; lists every path in `<home>/privacy/reports/<ds>/`.
    {_PRIVACY_WHEN_IT_FAILS}
    """,
}
_GATE_READS = {
    "lake": "this `ds`'s lake partitions and load log",
    "marts": "identity_map, customer_profiles, customer_rfm in the warehouse (read-only)",
    "segments": "customer_scores and every segment table in the warehouse (read-only)",
}


def _as_list(result: StepReport | list[StepReport]) -> list[StepReport]:
    return result if isinstance(result, list) else [result]


def extract(source: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        from personalization.extract import extract_source

        return _as_list(extract_source(source, ds, settings))

    step.__name__ = f"extract_{source}"
    step.__doc__ = f"""Load {source}'s landing files of `ds` into the lake.

    Reads: `<landing>/{source}/<ds>/` (the files of the landing contract).
    Writes: `<lake>/raw|quarantine|load_log/{source}/<table>/ds=<ds>/part-0.parquet`, each
    replaced atomically; rows that do not fit go to quarantine with a reason.
    When it fails: `SourceMissingError` means {source} did not deliver (retries give a late
    file a few minutes): ask for the file, then clear the task. Any other error names the
    file and line; fix or redeliver the file, then clear the task.
    """
    return step


def extract_esp_feedback(ds: date, settings: Settings) -> list[StepReport]:
    """Pull unsubscribes, bounces and complaints from the ESPs, then load them like a source.

    Reads: each API ESP in `esp_targets` (credentials from env vars or Airflow connections).
    Writes: `<landing>/esp/<ds>/suppressions.csv` (hashed emails; written once per day, a
    rerun reuses it), then the lake partition `raw/esp/suppressions/ds=<ds>`.
    When it fails: an ESP's API kept failing (the error names it and the HTTP status): check
    its credentials or status page, then clear the task. Nothing downstream runs meanwhile:
    an export without tonight's unsubscribes could mail them.
    """
    from personalization.esp.feedback import SOURCE, pull_suppressions
    from personalization.extract import extract_source

    return [pull_suppressions(ds, settings), *extract_source(SOURCE, ds, settings)]


def build(stage: str, full_refresh: bool = False) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        from personalization.warehouse import build as dbt_build

        return _as_list(dbt_build(ds, stage, settings, full_refresh=full_refresh))

    step.__name__ = f"build_{stage}"
    step.__doc__ = _BUILD_DOCS[stage]
    return step


def gate(stage: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        from personalization.quality import gate as quality_gate

        return _as_list(quality_gate(ds, stage, settings))

    step.__name__ = f"gate_{stage}"
    step.__doc__ = f"""Quality gate on the {stage}: Great Expectations suites for `ds`.

    Reads: {_GATE_READS[stage]}.
    Writes: `<quality>/<ds>/{stage}.json` (results), `{stage}.metrics.json` (baselines for
    drift and volume), Data Docs under `<quality>/data_docs/`.
    When it fails: an error-severity expectation failed and nothing downstream runs (no
    retries: a verdict, not a glitch). The log and the results file list each failed
    expectation with sample rows; fix the data or the rule, then clear the task.
    """
    return step


def score(ds: date, settings: Settings) -> list[StepReport]:
    """Score every person: VIP and churn probabilities, next best products, best send hour.

    Reads: the marts in the warehouse (read-only), the model registry under `<models>/`.
    Writes: `<scores>/ds=<ds>/customer_scores.parquet`; trains first (into `<models>/`) when
    no model exists or the newest is older than `retrain_every_days`.
    When it fails: read the one-line error (a missing mart: rerun build_marts; a model that
    cannot load: retrain with `personalization train --date <ds>`), then clear the task.
    """
    from personalization.scoring import score as score_customers

    return _as_list(score_customers(ds, settings))


def trigger_context(ds: date, settings: Settings) -> list[StepReport]:
    """Publish the trigger runner's snapshot of the marts (people, products, recommendations).

    Reads: public marts in the warehouse (read-only).
    Writes: a new `context-<ds>-<id>/` folder of Parquet files under the triggers state dir,
    then swaps the `context` link to it atomically (the runner keeps the old one until then).
    When it fails: the error names the warehouse problem; the trigger runner keeps deciding
    with the previous snapshot meanwhile. Fix, then clear the task.
    """
    from personalization.triggers import publish_context

    return _as_list(publish_context(ds, settings))


def export(ds: date, settings: Settings) -> list[StepReport]:
    """Publish the segment exports of `ds` (files + manifest), atomically.

    Reads: segment tables and profiles in the warehouse (read-only), suppressions, erasures.
    Writes: `<exports>/<ds>/` (moved into place in one rename) and the `latest` link.
    When it fails: nothing is published (the previous export stays); the error names the
    segment or file. A failed export gate lists the offending rows. Fix, then clear the task.
    """
    from personalization.export import publish

    return _as_list(publish(ds, settings))


def privacy(name: str) -> StepFn:
    def step(ds: date, settings: Settings) -> list[StepReport]:
        import personalization.privacy as privacy_steps

        return _as_list(getattr(privacy_steps, name)(ds, settings))

    step.__name__ = name
    step.__doc__ = _PRIVACY_DOCS[name]
    return step


def sync(ds: date, settings: Settings) -> list[StepReport]:
    """Sync the export of `ds` to each ESP in `esp_targets`.

    Reads: `<exports>/<ds>/`, the sync log, ESP credentials (env vars or Airflow connections).
    Writes: the ESPs' lists (delta or mirror), the sync log, `<home>/esp_drop/` for the file drop.
    When it fails: an ESP kept failing after its retries; the error names the ESP and the
    HTTP status. Syncs are idempotent: fix the credentials or wait for the ESP, then clear.
    """
    from personalization.esp import sync as esp_sync

    reports: list[StepReport] = []
    for esp in settings.esp_targets:
        reports += _as_list(esp_sync(ds, esp, settings))
    return reports


# Order matters: DuckDB has one writer, so warehouse steps run one after another.
STEPS: dict[str, StepFn] = {
    **{f"extract_{s}": extract(s) for s in SOURCES},
    "extract_esp": extract_esp_feedback,  # the ESPs' feedback, before the export uses it
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


# What a step does instead when the run asks for a rebuild (`personalization run
# --full-refresh`): the marts' incremental tables from the whole lake. The same rows as the
# nights built; stored afresh, in the lake's order (docs/operations.md, "Rebuilding the marts").
FULL_REFRESH: dict[str, StepFn] = {"build_marts": build("marts", full_refresh=True)}


# Steps that never open the warehouse file. Every other step (a new one too, until it is
# listed here) takes the one-writer pool in Airflow and checks DuckDB's lock first.
WAREHOUSE_FREE = frozenset({*(n for n in STEPS if n.startswith("extract_")), "gate_lake", "sync"})

# Allocations between young collections during a step (`_fewer_collections`; default 700).
YOUNG_COLLECTION_EVERY = 50_000


def run_step(name: str, ds: date, settings: Settings,
             full_refresh: bool = False) -> list[StepReport]:
    """Run one named step for `ds`; log its counts and, one line each, its warnings.

    With `full_refresh`, a step that has a rebuild (`FULL_REFRESH`) runs that instead.

    Raises:
        WarehouseLockedError: the step needs the warehouse and another process holds it.
        DiskSpaceError: the step ran out of disk space (the line says how much is free where).
    """
    if name not in WAREHOUSE_FREE:
        ensure_unlocked(settings.warehouse_path)
    try:
        with _fewer_collections():
            reports = (FULL_REFRESH if full_refresh and name in FULL_REFRESH else STEPS)[name](
                ds, settings)
    except Exception as e:  # a lock taken after the check surfaces deep inside dbt or DuckDB
        line = lock_error_line(e, settings.warehouse_path)
        if line is not None:
            raise WarehouseLockedError(line) from e
        line = out_of_space_line(e, name, settings)
        if line is not None:
            raise DiskSpaceError(line) from e
        raise
    for r in reports:
        log_event(logger, "step_done", step=r.step, ds=r.ds, rows_in=r.rows_in,
                  rows_out=r.rows_out, rows_quarantined=r.rows_quarantined,
                  seconds=r.seconds, status=r.status)
        for line in warnings_of(r):
            log_event(logger, "step_warning", logging.WARNING, step=r.step, ds=r.ds, warning=line)
    return reports


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cycle collector less often during a step: dbt (in-process) and the ESP sync
    make millions of short-lived objects, and at the default threshold (a young collection
    every 700 allocations) a 1M night spent ≈ 3 s in ≈ 5,000 collections (build_marts 1.0-1.4,
    build_segments 0.7-1.0, sync 0.7). Cyclic garbage then waits a little longer (a few MB)."""
    saved = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def date_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
