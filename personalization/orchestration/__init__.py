"""Airflow glue for the DAG files in `dags/`, so those stay declarations.

- `schedule`: the nightly timetable and the business day a run processes.
- `assets`: the lake, warehouse and export Assets, and which step updates which.
- `alerts`: the failure notifier and the deadline callback (channel from an Airflow connection).
- `tasks`: the bodies of the tasks (a pipeline step, the business day, the run summary, retrain).
- `notes`: warnings as task and run notes, set by a scheduler listener (`plugin`).
- `docs`: the operator docs shown in the UI (DAG docs; task docs from the step docstrings).

Modules import Airflow only where they need it; the product itself never needs Airflow.
"""

WAREHOUSE_POOL = "personalization_warehouse"
"""One slot: every task that opens the warehouse file, in every DAG, takes it (one writer)."""
ALERT_CONN_ID = "personalization_alerts"
"""Airflow connection naming where alerts go (Slack-style webhook or SMTP); none = log only."""
