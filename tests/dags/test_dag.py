"""The Airflow DAGs: import cleanly, follow the house rules, and really run (dag.test())."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from personalization.orchestration import WAREHOUSE_POOL
from personalization.pipeline import STEPS, WAREHOUSE_FREE

REPO = Path(__file__).resolve().parents[2]
EXTRACTS = ["extract_crm", "extract_shop", "extract_pixel", "extract_esp"]
LATER = [s for s in STEPS if s not in EXTRACTS]
DAG_IDS = ["personalization_nightly", "personalization_retrain"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(DAG_IDS) <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dags_follow_the_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "personalization" in dag.tags
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date is not None and dag.schedule is not None
    assert "docs/operations.md" in dag.doc_md
    for t in dag.tasks:
        assert t.execution_timeout is not None, t.task_id
        assert t.retry_exponential_backoff, t.task_id
        if t.task_id not in ("business_day", "run_summary") and not t.task_id.startswith("gate_"):
            assert t.retries >= 1, t.task_id


def test_nightly_graph_runs_extracts_in_parallel_then_the_rest_in_order(dagbag):
    dag = dagbag.dags["personalization_nightly"]
    assert set(dag.task_ids) == {*STEPS, "business_day", "run_summary"}
    assert dag.get_task("business_day").downstream_task_ids == set(EXTRACTS)
    for name in EXTRACTS:
        assert dag.get_task(name).upstream_task_ids == {"business_day"}
        assert dag.get_task(name).downstream_task_ids == {LATER[0]}
    assert dag.get_task(LATER[0]).upstream_task_ids == set(EXTRACTS)
    for before, after in zip(LATER, LATER[1:], strict=False):
        assert dag.get_task(after).upstream_task_ids == {before}
    summary = dag.get_task("run_summary")
    assert summary.upstream_task_ids == {LATER[-1]} and summary.trigger_rule == "all_done"
    assert [t.task_id for t in dag.leaves] == ["run_summary"]
    assert "landing_dir" in dag.params


def test_every_task_that_opens_the_warehouse_takes_the_one_slot_pool(dagbag):
    nightly = dagbag.dags["personalization_nightly"]
    in_pool = {t.task_id for t in nightly.tasks if t.pool == WAREHOUSE_POOL}
    assert in_pool == set(STEPS) - WAREHOUSE_FREE
    assert {"build_marts", "gate_marts", "score", "build_segments", "export"} <= in_pool
    assert not {"extract_crm", "gate_lake", "sync", "business_day"} & in_pool
    assert dagbag.dags["personalization_retrain"].get_task("train").pool == WAREHOUSE_POOL
    # when both DAGs wait for the slot, the nightly run goes first
    assert (nightly.get_task("build_marts").priority_weight
            > dagbag.dags["personalization_retrain"].get_task("train").priority_weight)


def test_steps_publish_assets_and_retraining_is_scheduled_on_the_export(dagbag):
    from personalization.orchestration.assets import EXPORT, WAREHOUSE, lake

    nightly = dagbag.dags["personalization_nightly"]
    outlets = {t.task_id: [a.name for a in t.outlets] for t in nightly.tasks if t.outlets}
    assert outlets == {
        "extract_crm": [lake("crm").name], "extract_shop": [lake("shop").name],
        "extract_pixel": [lake("pixel").name], "extract_esp": [lake("esp").name],
        "build_marts": [WAREHOUSE.name],
        "build_segments": [WAREHOUSE.name], "export": [EXPORT.name]}
    retrain = dagbag.dags["personalization_retrain"]
    assert retrain.timetable.asset_condition == EXPORT


def test_every_task_is_documented_for_operators(dagbag):
    for dag_id in DAG_IDS:
        for t in dagbag.dags[dag_id].tasks:
            for label in ("**Reads**", "**Writes**", "**When it fails**"):
                assert label in (t.doc_md or ""), (t.task_id, label)


def test_failures_alert_once(dagbag):
    from personalization.orchestration.alerts import AlertNotifier

    nightly = dagbag.dags["personalization_nightly"]
    for t in nightly.tasks:
        callbacks = t.on_failure_callback or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        if t.task_id == "run_summary":  # reports the failure of a step that already alerted
            assert not callbacks
        else:
            assert any(isinstance(c, AlertNotifier) for c in callbacks), t.task_id


@pytest.mark.parametrize("hours", ["6", "1.5"])
def test_the_nightly_run_has_a_deadline_after_it_was_queued(monkeypatch, hours):
    from airflow.dag_processing.dagbag import DagBag

    from personalization.orchestration.alerts import deadline_missed

    monkeypatch.setenv("PERSONALIZATION_NIGHTLY_DEADLINE_HOURS", hours)
    nightly = DagBag(dag_folder=str(REPO / "dags")).dags["personalization_nightly"]
    (deadline,) = nightly.deadline if isinstance(nightly.deadline, list) else [nightly.deadline]
    assert deadline.reference.reference_name == "DagRunQueuedAtDeadline"
    assert deadline.interval.total_seconds() == float(hours) * 3600
    assert deadline.callback.path == f"{deadline_missed.__module__}.deadline_missed"


def test_factory_rejects_unknown_steps():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nightly_for_factory_test",
                                                  REPO / "dags" / "personalization_nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ValueError, match="unknown step"):
        module.make_nightly_dag("x", ["extract_crm", "explode"])


@pytest.mark.slow
def test_dag_test_runs_the_extract_tasks_for_one_logical_date(dags_airflow_db, tmp_path,
                                                              monkeypatch, write_landing):
    """Extracts for the logical date, their lake Asset events, the summary, the notes."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("PERSONALIZATION_HOME", str(tmp_path / "home"))
    # pixel may skip a day: its missing file is then a warning, not a failure
    monkeypatch.setenv("PERSONALIZATION_REQUIRED_SOURCES", '["crm", "shop"]')
    landing = tmp_path / "elsewhere"  # passed as the DAG param, not through settings
    write_landing(landing, "2026-02-03", pixel=False)
    dag = DagBag(dag_folder=str(dags_airflow_db / "dags")).dags["personalization_extract_only"]
    run = dag.test(logical_date=datetime(2026, 2, 3, tzinfo=UTC),
                   run_conf={"landing_dir": str(landing)})
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, {t: ti.state for t, ti in tis.items()}
    assert set(tis) == {"business_day", "extract_crm", "extract_shop", "extract_pixel",
                        "run_summary"}

    lake = tmp_path / "home" / "lake"
    parts = sorted(p.relative_to(lake).as_posix() for p in (lake / "raw").rglob("part-0.parquet"))
    assert parts == [f"raw/{t}/ds=2026-02-03/part-0.parquet" for t in (
        "crm/contacts", "crm/erasure_requests", "shop/customers", "shop/order_items",
        "shop/orders", "shop/products")]
    assert (lake / "quarantine/crm/contacts/ds=2026-02-03/part-0.parquet").exists()

    crm = tis["extract_crm"].xcom_pull(task_ids="extract_crm")
    assert (crm["ds"], crm["rows_in"], crm["rows_out"], crm["rows_quarantined"]) == (
        "2026-02-03", 2, 1, 1)
    summary = tis["run_summary"].xcom_pull(task_ids="run_summary")
    assert summary["status"] == "warning" and summary["with_warnings"] == ["extract_pixel"]
    assert summary["failed"] == []

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        by_asset = {e.asset.name: e.extra for e in events}
        assert set(by_asset) == {"personalization_lake_crm", "personalization_lake_shop",
                                 "personalization_lake_pixel"}
        crm_event = by_asset["personalization_lake_crm"]
        assert crm_event["ds"] == "2026-02-03"
        assert crm_event["partitions"]["contacts"]["rows"] == 1
        assert crm_event["partitions"]["contacts"]["path"].endswith("crm/contacts/ds=2026-02-03")
    # the scheduler's listener (our plugin) turned the summary into notes
    with create_session() as session:
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance

        dr = session.query(DagRun).filter(DagRun.run_id == run.run_id).one()
        assert dr.note.startswith("⚠ 2026-02-03: 3 steps") and "extract_pixel" in dr.note
        notes = {ti.task_id: ti.note for ti in session.query(TaskInstance).filter(
            TaskInstance.run_id == run.run_id)}
        assert notes["extract_pixel"].startswith("⚠ 1 warning(s)")
        assert "not delivered (source not required)" in notes["extract_pixel"]
        assert notes["extract_crm"] is None and notes["business_day"] is None
