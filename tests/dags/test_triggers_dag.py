"""The triggers DAG: imports cleanly, follows the house rules, and a dag.test() run decides."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SHIM = f'''# airflow DAG file (safe mode only parses files that mention airflow and dag)
import importlib.util

_spec = importlib.util.spec_from_file_location(
    "personalization_triggers_under_test", {str(REPO / "dags" / "personalization_triggers.py")!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
triggers = _module.triggers_dag
'''


def test_triggers_dag_follows_the_house_rules():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["personalization_triggers"]
    assert "personalization" in dag.tags and dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule is not None and dag.dagrun_timeout is not None
    for t in dag.tasks:
        assert t.retries >= 1 and t.execution_timeout is not None


@pytest.mark.slow
def test_dag_test_evaluates_the_rules_as_of_the_interval_end(dags_airflow_db, tmp_path,
                                                             monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    from personalization.config import load_settings
    from personalization.triggers import publish_context
    from personalization.triggers.senders import drop_files
    from tests.test_triggers import DS, SECRET, T0, _warehouse, event, post

    home = tmp_path / "home"
    monkeypatch.setenv("PERSONALIZATION_HOME", str(home))
    monkeypatch.setenv("PERSONALIZATION_TRIGGERS_DIR", str(REPO / "triggers"))
    settings = load_settings(home=home, intake_secret=SECRET)
    _warehouse(settings)
    publish_context(DS, settings)
    post(settings, [event("dag1", "add_to_cart", T0, customer_id="c-anna", sku="SKU-1")],
         at=T0 + timedelta(minutes=1))
    (dags_airflow_db / "dags" / "triggers.py").write_text(SHIM)
    dag = DagBag(dag_folder=str(dags_airflow_db / "dags")).dags["personalization_triggers"]
    run = dag.test(logical_date=(T0 + timedelta(minutes=40)).replace(tzinfo=UTC))
    assert run.state == DagRunState.SUCCESS
    sent = [json.loads(p.read_text())["email"] for p in drop_files(settings, "cart_abandoned")]
    assert sent == ["anna@example.com"]
    decided = duckdb.sql(f"select decided_at from read_parquet('{home}/lake/raw/triggers/sends/"
                         "*/*.parquet')").fetchall()
    assert decided == [(run.data_interval_end.astimezone(UTC).replace(tzinfo=None),)]
