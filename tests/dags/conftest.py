"""Airflow for the DAG tests: a private AIRFLOW_HOME, a sqlite DB migrated once per session.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="personalization-airflow-"))
TEST_DAGS_FOLDER = AIRFLOW_HOME / "dags"
TEST_DAGS_FOLDER.mkdir()
os.environ.update({
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS_FOLDER),
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    # dag.test() in Airflow 3.3.2 fails at the end of a successful run of a DAG with a
    # deadline; the deadline itself is checked by the tests that parse the DAG with it.
    "PERSONALIZATION_NIGHTLY_DEADLINE_HOURS": "0",
})

# dag.test() finds the DAG it runs by parsing the DAGs folder, so the test folder holds a
# shim that loads the real DAG files: the nightly and retrain DAGs and, through the nightly
# factory, one limited to the extract steps.
SHIM = f'''# airflow DAG file (safe mode only parses files that mention airflow and dag)
import importlib.util


def _load(name):
    spec = importlib.util.spec_from_file_location(
        f"{{name}}_under_test", f"{str(REPO / "dags")}/{{name}}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_nightly = _load("personalization_nightly")
extract_only = _nightly.make_nightly_dag(
    "personalization_extract_only", ["extract_crm", "extract_shop", "extract_pixel"])
nightly = _nightly.nightly_dag
retrain = _load("personalization_retrain").retrain_dag
'''


def _session_dir(tmp_path_factory) -> Path:
    """A folder of this pytest session that every xdist worker sees (the workers' temp
    folders are siblings); without xdist the session's own temp folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory) -> Path:
    """A freshly migrated, never used sqlite metadata DB: `airflow db migrate` runs once per
    session (~20-40 s) under a lock, and every worker copies the result."""
    import fcntl
    import shutil

    shared = _session_dir(tmp_path_factory)
    template = shared / "airflow-migrated.db"
    with (shared / "airflow-migrated.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            airflow = Path(sys.executable).parent / "airflow"
            proc = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True,
                                  env=os.environ.copy(), timeout=300)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
            shutil.copyfile(AIRFLOW_HOME / "airflow.db", shared / "airflow-migrated.db.part")
            (shared / "airflow-migrated.db.part").rename(template)
    return template


@pytest.fixture(scope="session")
def dags_airflow_db(migrated_airflow_db) -> Path:
    """The migrated sqlite metadata DB in this worker's AIRFLOW_HOME; returns AIRFLOW_HOME."""
    import shutil

    (TEST_DAGS_FOLDER / "extract_only.py").write_text(SHIM)
    shutil.copyfile(migrated_airflow_db, AIRFLOW_HOME / "airflow.db")
    return AIRFLOW_HOME


def _write_landing(root: Path, ds: str, pixel: bool = True) -> None:
    """One tiny delivery of every source for `ds` (pixel optional)."""
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
    if pixel:
        events = root / "pixel" / ds / "events.jsonl.gz"
        events.parent.mkdir(parents=True)
        events.write_bytes(gzip.compress(json.dumps({
            "event_id": "e1", "occurred_at": f"{ds}T09:00:00Z", "anonymous_id": "x",
            "event_type": "page_view", "user_agent": "UA"}).encode() + b"\n"))


@pytest.fixture
def write_landing():
    """`write_landing(root, ds, pixel=True)`: one tiny delivery of every source for `ds`."""
    return _write_landing


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
