"""`make airflow` (Airflow standalone) in its own process group, and a REST client logged in as
its admin: what the scheduler test and the scheduler benchmark use to drive a real Airflow
the way docs/operations.md tells an operator to.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 2.0) -> Any:
    """Call `check` until it returns something truthy; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Standalone:
    """`make airflow AIRFLOW_HOME=<home> AIRFLOW_PORT=<free port> [AIRFLOW_DAGS=<folder>]`.

    Args:
        home: a fresh AIRFLOW_HOME (metadata DB, logs, generated admin password).
        env: the environment (PERSONALIZATION_HOME etc.); AIRFLOW* variables are dropped so
            only the Makefile's settings apply.
        dags_folder: another DAGs folder than the repository's `dags/`.
    """

    def __init__(self, home: Path, env: dict[str, str], dags_folder: Path | None = None):
        self.home, self.port = home, free_port()
        clean = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
        args = ["make", "-s", "-o", "install", "airflow", f"AIRFLOW_HOME={home}",
                f"AIRFLOW_PORT={self.port}"]
        if dags_folder is not None:
            args.append(f"AIRFLOW_DAGS={dags_folder}")
        self.log_path = home / "standalone.log"
        self._log = self.log_path.open("w")
        # -o install: the suite runs after `make install`; never reinstall from here
        self.proc = subprocess.Popen(args, cwd=REPO, env=clean, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=f"http://localhost:{self.port}", timeout=120)

    def wait_ready(self, timeout: float = 300) -> float:
        """Wait until every component reports healthy, then log in; returns seconds waited."""
        start = time.monotonic()

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"make airflow exited {self.proc.returncode}: {self.tail()}")
            try:
                health = self.client.get("/api/v2/monitor/health").json()
            except (httpx.HTTPError, ValueError):
                return False
            return all(health.get(c, {}).get("status") == "healthy" for c in COMPONENTS)

        wait_for("airflow standalone to be healthy", healthy, timeout, 3)
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(password_file.read_text())["admin"]
        token = self.client.post("/auth/token", json={"username": "admin", "password": password})
        token.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return time.monotonic() - start

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.client.request(method, f"/api/v2{path}", **kwargs)

    def unpause(self, dag_id: str) -> None:
        wait_for(f"{dag_id} to be parsed", lambda: self.api("GET", f"/dags/{dag_id}").is_success,
                 180)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns").json()["dag_runs"]

    def finished_run(self, dag_id: str, logical_date: str, timeout: float) -> dict:
        """The run with this logical date (`YYYY-MM-DDT00:00:00Z`), once it has finished."""
        def finished():
            found = [r for r in self.runs(dag_id)
                     if (r.get("logical_date") or "").startswith(logical_date[:19])]
            return found[0] if found and found[0]["state"] in ("success", "failed") else None

        return wait_for(f"the {dag_id} run for {logical_date} to finish", finished, timeout, 5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()[
            "task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        value = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/"
                         "xcomEntries/return_value", params={"deserialize": True}).json()["value"]
        return json.loads(value) if isinstance(value, str) else value

    def task_log_records(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """The JSON records of a task's first attempt, as the task log file holds them."""
        path = (self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
                / f"task_id={task_id}" / "attempt=1.log")
        return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]

    def tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text()[-chars:]

    def stop(self) -> None:
        """Stop the process group we started: every component at once, then harder."""
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(1)
            else:
                continue
            break
        self.proc.wait(10)
        self.client.close()
        self._log.close()
