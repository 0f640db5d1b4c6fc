"""DuckDB's single-writer lock: another process holding the warehouse is one clear line."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date

import duckdb
import pytest

from personalization.cli import main
from personalization.config import load_settings
from personalization.exceptions import WarehouseLockedError
from personalization.pipeline import run_step
from personalization.warehouse.lock import ensure_unlocked, lock_error_line

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held_warehouse(tmp_path):
    """A warehouse file another process holds open for writing; yields (settings, pid)."""
    settings = load_settings(home=tmp_path / "home")
    settings.warehouse_path.parent.mkdir(parents=True)
    duckdb.connect(str(settings.warehouse_path)).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(settings.warehouse_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    yield settings, holder.pid
    holder.kill()
    holder.wait()


def test_a_held_warehouse_is_named_with_the_process_that_holds_it(held_warehouse):
    settings, pid = held_warehouse
    with pytest.raises(WarehouseLockedError) as e:
        ensure_unlocked(settings.warehouse_path)
    message = str(e.value)
    assert f"warehouse {settings.warehouse_path} is locked by another process: PID {pid}" in message
    assert "-c" in message  # the holder's command line, so the operator knows what it is
    assert "\n" not in message


def test_a_free_or_missing_warehouse_passes_and_is_not_created(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    ensure_unlocked(path)
    assert not path.exists()
    duckdb.connect(str(path)).close()
    ensure_unlocked(path)


def test_a_warehouse_step_refuses_to_start_while_another_process_holds_it(held_warehouse):
    settings, pid = held_warehouse
    start = time.perf_counter()
    with pytest.raises(WarehouseLockedError, match=f"PID {pid}"):
        run_step("gate_marts", date(2026, 3, 10), settings)
    assert time.perf_counter() - start < 60  # refused up front, not after a long dbt call


def test_the_cli_prints_one_line_when_the_warehouse_is_held(held_warehouse, monkeypatch, capsys):
    settings, pid = held_warehouse
    monkeypatch.setenv("PERSONALIZATION_HOME", str(settings.home))
    code = main(["run", "--date", "2026-03-10", "--only", "build_marts"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"is locked by another process: PID {pid}" in err and "Traceback" not in err


def test_lock_errors_deep_inside_a_step_are_recognised():
    dbt_message = ('dbt build failed:\nstg_crm__contacts (model, error): IO Error: Could not set '
                   'lock on file "/x/warehouse.duckdb": Conflicting lock is held in '
                   '/usr/bin/python3.11 (PID 4194303). See also https://duckdb.org/docs')
    line = lock_error_line(RuntimeError(dbt_message), "/x/warehouse.duckdb")
    assert line.startswith("warehouse /x/warehouse.duckdb is locked by another process: "
                           "PID 4194303 (/usr/bin/python3.11)")
    assert lock_error_line(RuntimeError("Catalog Error: Table x does not exist"), "/x") is None
