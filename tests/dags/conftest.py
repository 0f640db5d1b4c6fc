"""Airflow for the DAG tests: a private AIRFLOW_HOME, a sqlite DB migrated once per session.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports it.
"""

from __future__ import annotations

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
})

# dag.test() finds the DAG it runs by parsing the DAGs folder, so the test folder holds a
# shim that loads the real DAG file: the full nightly DAG and, through its factory, one
# limited to the extract steps.
SHIM = f'''# airflow DAG file (safe mode only parses files that mention airflow and dag)
import importlib.util

_spec = importlib.util.spec_from_file_location(
    "personalization_nightly_under_test", {str(REPO / "dags" / "personalization_nightly.py")!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

extract_only = _module.make_nightly_dag(
    "personalization_extract_only", ["extract_crm", "extract_shop", "extract_pixel"])
nightly = _module.nightly_dag
'''


@pytest.fixture(scope="session")
def dags_airflow_db() -> Path:
    """Migrate the sqlite metadata DB once; returns AIRFLOW_HOME."""
    (TEST_DAGS_FOLDER / "extract_only.py").write_text(SHIM)
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return AIRFLOW_HOME


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
