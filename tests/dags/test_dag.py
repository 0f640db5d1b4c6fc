"""The Airflow DAGs: import cleanly, follow the house rules, and really run (dag.test())."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from personalization.pipeline import STEPS

REPO = Path(__file__).resolve().parents[2]
EXTRACTS = ["extract_crm", "extract_shop", "extract_pixel"]
LATER = [s for s in STEPS if s not in EXTRACTS]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"personalization_nightly", "personalization_retrain"} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", ["personalization_nightly", "personalization_retrain"])
def test_dags_follow_the_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "personalization" in dag.tags
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date is not None and dag.schedule is not None
    for t in dag.tasks:
        assert t.execution_timeout is not None, t.task_id
        assert t.retry_exponential_backoff, t.task_id
        if not t.task_id.startswith("gate_"):
            assert t.retries >= 1, t.task_id


def test_nightly_graph_runs_extracts_in_parallel_then_the_rest_in_order(dagbag):
    dag = dagbag.dags["personalization_nightly"]
    assert set(dag.task_ids) == set(STEPS)
    for name in EXTRACTS:
        assert dag.get_task(name).upstream_task_ids == set()
        assert dag.get_task(name).downstream_task_ids == {LATER[0]}
    assert dag.get_task(LATER[0]).upstream_task_ids == set(EXTRACTS)
    for before, after in zip(LATER, LATER[1:], strict=False):
        assert dag.get_task(after).upstream_task_ids == {before}
    assert "landing_dir" in dag.params


def test_factory_rejects_unknown_steps():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nightly_for_factory_test",
                                                  REPO / "dags" / "personalization_nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ValueError, match="unknown step"):
        module.make_nightly_dag("x", ["extract_crm", "explode"])


def _landing(root: Path, ds: str) -> None:
    files = {
        f"crm/{ds}/contacts.csv": "contact_id,email,first_name,last_name,phone,street,city,"
        "postcode,country,birth_date,gender,language,created_at,updated_at,email_opt_in,"
        "opt_in_at,unsubscribed_at\nc1,a@example.com,A,B,,,,,,,,,,,true,,\nc2,bad,A,B,,,,,,,,,,,,,\n",
        f"crm/{ds}/erasure_requests.csv": "email,requested_at\n",
        f"shop/{ds}/customers.csv": "customer_id,email,first_name,last_name,phone,street,city,"
        "postcode,country,created_at,updated_at\ns1,a@example.com,A,B,,,,,,,\n",
        f"shop/{ds}/products.csv": "sku,name,category,price,active\nK,Mug,kitchen,9.5,true\n",
        f"shop/{ds}/orders.jsonl": json.dumps({
            "order_id": "o1", "customer_id": "s1", "email": "a@example.com",
            "ordered_at": f"{ds}T08:00:00Z", "status": "placed", "currency": "EUR",
            "total_amount": 9.5, "items": [{"sku": "K", "quantity": 1, "unit_price": 9.5}]}) + "\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    events = root / "pixel" / ds / "events.jsonl.gz"
    events.parent.mkdir(parents=True)
    events.write_bytes(gzip.compress(json.dumps({
        "event_id": "e1", "occurred_at": f"{ds}T09:00:00Z", "anonymous_id": "x",
        "event_type": "page_view", "user_agent": "UA"}).encode() + b"\n"))


@pytest.mark.slow
def test_dag_test_runs_the_extract_tasks_for_one_logical_date(dags_airflow_db, tmp_path,
                                                              monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("PERSONALIZATION_HOME", str(tmp_path / "home"))
    landing = tmp_path / "elsewhere"  # passed as the DAG param, not through settings
    _landing(landing, "2026-02-03")
    dag = DagBag(dag_folder=str(dags_airflow_db / "dags")).dags["personalization_extract_only"]
    run = dag.test(logical_date=datetime(2026, 2, 3, tzinfo=UTC),
                   run_conf={"landing_dir": str(landing)})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    lake = tmp_path / "home" / "lake"
    parts = sorted(p.relative_to(lake).as_posix() for p in (lake / "raw").rglob("part-0.parquet"))
    assert parts == [f"raw/{t}/ds=2026-02-03/part-0.parquet" for t in (
        "crm/contacts", "crm/erasure_requests", "pixel/events", "shop/customers",
        "shop/order_items", "shop/orders", "shop/products")]
    assert (lake / "quarantine/crm/contacts/ds=2026-02-03/part-0.parquet").exists()


@pytest.mark.slow
def test_dag_test_runs_the_whole_nightly_flow_on_generated_data(dags_airflow_db, tmp_path,
                                                                monkeypatch):
    """The real DAG, every task, one logical date, on generated data whose history is loaded."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    from personalization.config import load_settings
    from personalization.generate import generate
    from personalization.pipeline import date_range, run_step

    home = tmp_path / "home"
    monkeypatch.setenv("PERSONALIZATION_HOME", str(home))
    settings = load_settings(home=home)
    start, last = date(2026, 5, 1), date(2026, 5, 5)
    generate(out=settings.landing_dir, customers=300, days=5, seed=3, start=start,
             truth_path=tmp_path / "truth.parquet")
    for ds in date_range(start, last - timedelta(days=1)):  # history, as a backfill would
        for source in ("crm", "shop", "pixel"):
            run_step(f"extract_{source}", ds, settings)
    dag = DagBag(dag_folder=str(dags_airflow_db / "dags")).dags["personalization_nightly"]
    run = dag.test(logical_date=datetime(2026, 5, 5, tzinfo=UTC))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    assert set(states) == {"extract_crm", "extract_shop", "extract_pixel", "gate_lake",
                           "build_marts", "gate_marts", "publish_trigger_context", "score",
                           "build_segments",
                           "gate_segments", "export", "sync"}
    manifest = json.loads((settings.exports_dir / "2026-05-05" / "manifest.json").read_text())
    assert manifest["ds"] == "2026-05-05" and len(manifest["segments"]) >= 12
    assert (settings.exports_dir / "latest").resolve().name == "2026-05-05"
