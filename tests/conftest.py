

# --- segments area (tests/test_segments*.py) -------------------------------------------------
# A copy of the dbt project in which the marts segments read are stand-in tables created
# straight in DuckDB (typed as in docs/architecture.md), so segment tests do not need the
# lake, staging or identity resolution, and run in seconds.

import shutil as _segments_shutil  # noqa: E402
from pathlib import Path as _SegmentsPath  # noqa: E402

import pytest as _segments_pytest  # noqa: E402

_SEGMENTS_REPO = _SegmentsPath(__file__).resolve().parent.parent
_SEGMENTS_MART_COLUMNS = {
    "customer_profiles": (
        "unified_id varchar, email varchar, email_sha256 varchar, first_name varchar, "
        "last_name varchar, phone varchar, street varchar, city varchar, postcode varchar, "
        "country varchar, language varchar, birth_date date, gender varchar, "
        "is_opted_in boolean, opted_in_at timestamp, is_unsubscribed boolean, "
        "unsubscribed_at timestamp, is_erased boolean, is_contactable boolean, "
        "lifecycle_stage varchar, first_order_at timestamp, last_order_at timestamp, "
        "order_count integer, revenue double, last_seen_at timestamp, "
        "last_email_open_at timestamp, last_email_click_at timestamp, "
        "favourite_category varchar, main_device varchar, first_seen_at timestamp, "
        "as_of_date date"),
    "orders": (
        "order_id varchar, unified_id varchar, customer_id varchar, ordered_at timestamp, "
        "ordered_on date, status varchar, currency varchar, total_amount double, "
        "item_count integer, is_guest_checkout boolean"),
    "customer_events": (
        "event_id varchar, unified_id varchar, occurred_at timestamp, event_type varchar, "
        "sku varchar, category varchar, campaign_id varchar, variant varchar, device varchar"),
    "customer_rfm": (
        "unified_id varchar, as_of_date date, recency_days integer, frequency integer, "
        "monetary double, recency_score integer, frequency_score integer, "
        "monetary_score integer, rfm_score varchar, rfm_segment varchar"),
    "products": "sku varchar, name varchar, category varchar, price double, is_active boolean",
}
# Built by dbt from the scores Parquet; created empty up front so unit tests can read its columns.
_SEGMENTS_SCORES_COLUMNS = (
    "unified_id varchar, p_vip double, p_churn double, vip_model_version varchar, "
    "churn_model_version varchar, scored_at timestamp, next_best_products varchar[], "
    "best_send_hour integer")


class SegmentsProject:
    """A throw-away copy of the dbt project with stand-in marts and its own warehouse."""

    def __init__(self, tmp_path: _SegmentsPath):
        from personalization.config import load_settings

        self.root = tmp_path / "project"
        models = self.root / "dbt_project" / "models"
        self.root.mkdir(parents=True)
        for name in ("dbt_project.yml", "profiles.yml"):
            _segments_shutil.copy(_SEGMENTS_REPO / name, self.root / name)
        _segments_shutil.copytree(_SEGMENTS_REPO / "dbt_project" / "macros",
                                  self.root / "dbt_project" / "macros")
        # customer_scores reads the scores Parquet through its staging model.
        for folder in ("segments", "segment_history", "scoring", "staging/scores"):
            _segments_shutil.copytree(_SEGMENTS_REPO / "dbt_project" / "models" / folder,
                                      models / folder)
        (models / "marts").mkdir()
        for table in _SEGMENTS_MART_COLUMNS:
            # Never built: the test creates the table itself; the file only makes ref() resolve.
            (models / "marts" / f"{table}.sql").write_text(f"select * from main.{table}\n")
        self.settings = load_settings(home=tmp_path / "home", project_dir=self.root)
        self.segments_dir = models / "segments"
        self.create_marts()

    def connect(self):
        import duckdb

        self.settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.settings.warehouse_path))

    def create_marts(self) -> None:
        with self.connect() as con:
            for table, columns in _SEGMENTS_MART_COLUMNS.items():
                con.execute(f"create or replace table main.{table} ({columns})")
            con.execute(f"create or replace table main.customer_scores ({_SEGMENTS_SCORES_COLUMNS})")

    def write_scores(self, ds: str, rows: list[dict]) -> None:
        """Write `<scores_dir>/ds=<ds>/customer_scores.parquet` as the scoring step would."""
        import duckdb

        target = self.settings.scores_dir / f"ds={ds}"
        target.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        con.execute(f"create table s ({_SEGMENTS_SCORES_COLUMNS})")
        for row in rows:
            con.execute(f"insert into s ({', '.join(row)}) values ({', '.join('?' for _ in row)})",
                        list(row.values()))
        con.execute(f"copy s to '{target / 'customer_scores.parquet'}' (format parquet)")
        con.close()

    def load(self, table: str, rows: list[dict]) -> None:
        """Replace a stand-in mart's rows (columns not given stay null)."""
        with self.connect() as con:
            con.execute(f"delete from main.{table}")
            for row in rows:
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                con.execute(f"insert into main.{table} ({cols}) values ({marks})", list(row.values()))

    def query(self, sql: str) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql).fetchall()

    def dbt(self, *args: str, ds: str | None = None, extra_vars: dict | None = None):
        """Run dbt in-process against this copy; returns dbt's result object (no raising)."""
        import json

        from dbt.cli.main import dbtRunner

        from personalization.warehouse.dbt import dbt_environment

        dbt_vars = {**({"ds": ds} if ds else {}), **(extra_vars or {})}
        argv = ["--quiet", "--no-use-colors", "--no-send-anonymous-usage-stats", *args,
                "--project-dir", str(self.root), "--profiles-dir", str(self.root),
                "--target-path", str(self.settings.dbt_target_dir),
                "--log-path", str(self.settings.logs_dir)]
        if dbt_vars:
            argv += ["--vars", json.dumps(dbt_vars)]
        with dbt_environment(self.settings):
            return dbtRunner().invoke(argv)


@_segments_pytest.fixture
def segments_project(tmp_path) -> SegmentsProject:
    """A dbt project copy with segments, history and scores over stand-in mart tables."""
    return SegmentsProject(tmp_path)


from collections import OrderedDict  # noqa: E402

# --- scheduling (`make test`: xdist --dist loadfile) -------------------------------------------
# Longest modules first, so the suite ends with short ones instead of one worker finishing a
# long night alone. The Spark equality night (a JVM and one night on both engines, the longest
# module) starts first on its own worker and overlaps with the rest; then the modules that
# build whole pipeline nights, longest first (durations of the last fresh-clone run).
_EARLY_MODULES = (
    "tests/test_spark.py",
    "tests/test_e2e.py",
    "tests/test_night_properties.py",
    "tests/test_warehouse.py",
    "tests/dags/test_scheduler.py",
    "tests/test_identity.py",
    "tests/test_encryption.py",
    "tests/test_incremental_marts.py",
    "tests/test_identity_incremental.py",
    "tests/test_dirty_night.py",
)


class _EarlyFirst(OrderedDict):
    """xdist's work queue with the modules of _EARLY_MODULES in front, in that order."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if key in _EARLY_MODULES:
            for early in reversed(_EARLY_MODULES):
                if early in self:
                    self.move_to_end(early, last=False)


def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class EarlyFirstScheduling(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            self.workqueue = _EarlyFirst()

    return EarlyFirstScheduling(config, log)
