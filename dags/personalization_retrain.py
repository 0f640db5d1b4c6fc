"""Retraining of the VIP and churn models, after a published export (an Airflow DAG).

Declarations only: the task body is `personalization.orchestration.tasks.run_retrain`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from personalization.orchestration import WAREHOUSE_POOL
from personalization.orchestration.alerts import AlertNotifier
from personalization.orchestration.assets import EXPORT
from personalization.orchestration.docs import RETRAIN_DOC, step_doc
from personalization.orchestration.schedule import START_DATE
from personalization.orchestration.tasks import run_retrain

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 1,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=3),
    "on_failure_callback": AlertNotifier(),
    "priority_weight": 1,  # the nightly run goes first when both wait for the warehouse
    "weight_rule": "absolute",
}


@dag(dag_id="personalization_retrain", schedule=EXPORT, start_date=START_DATE, catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["personalization", "models"],
     params={"force": Param(False, type="boolean",
                            description="Retrain even if the models are recent.")},
     doc_md=RETRAIN_DOC)
def personalization_retrain():
    @task(pool=WAREHOUSE_POOL, doc_md=step_doc("train"))
    def train(params: dict | None = None) -> dict:
        return run_retrain(force=bool((params or {}).get("force")))

    train()


retrain_dag = personalization_retrain()
