"""End to end on generated data, through the same step functions `personalization run` and the
DAG use: real extract, dbt on DuckDB, GX gate, scoring, segments, export and file-drop sync.

One small data set is built once for the module (in a throw-away copy of the dbt project, so
tests can add segment files); the tests then check what a demanding operator would."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from personalization.config import SOURCES, load_settings
from personalization.exceptions import QualityGateError
from personalization.generate import generate
from personalization.pipeline import STEPS, date_range, run_step

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
START = date(2026, 6, 1)
DAYS = 6
NIGHTS = [START + timedelta(days=3), START + timedelta(days=4)]
BAD_NIGHT = START + timedelta(days=5)


def _run(ds: date, settings, steps=STEPS) -> None:
    for name in steps:
        run_step(name, ds, settings)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    project = root / "project"
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "dbt_project", project / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    settings = load_settings(home=root / "home", project_dir=project)
    generate(out=settings.landing_dir, customers=400, days=DAYS, seed=11, start=START,
             truth_path=root / "truth.parquet")
    for ds in date_range(START, NIGHTS[0] - timedelta(days=1)):
        _run(ds, settings, [f"extract_{s}" for s in SOURCES])
    for ds in NIGHTS:
        _run(ds, settings)
    return settings


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_each_night_publishes_a_complete_export(night):
    for ds in NIGHTS:
        manifest = json.loads((night.exports_dir / ds.isoformat() / "manifest.json").read_text())
        names = {s["name"] for s in manifest["segments"]}
        assert {"big_spenders", "cart_abandoners", "prospects", "rfm_segments", "vip"} <= names
        assert manifest["quality_gate"]["segments"] in ("passed", "warning")
        assert sum(s["rows"] for s in manifest["segments"]) > 0
    assert (night.exports_dir / "latest").resolve().name == NIGHTS[-1].isoformat()


def test_every_landing_row_is_loaded_or_quarantined(night):
    logs = duckdb.sql(f"""
        SELECT sum(rows_in), sum(rows_loaded), sum(rows_quarantined)
        FROM read_parquet('{night.lake_dir}/load_log/*/*/*/part-0.parquet')""").fetchall()[0]
    rows_in, loaded, quarantined = logs
    assert rows_in == loaded + quarantined and quarantined > 0
    reasons = duckdb.sql(f"""SELECT count(*) FROM read_parquet(
        '{night.lake_dir}/quarantine/*/*/*/part-0.parquet', union_by_name = true)
        WHERE reason IS NULL OR reason = ''""").fetchall()[0][0]
    assert reasons == 0


def test_no_erased_email_leaves_in_any_export(night):
    erased = {r[0] for r in duckdb.sql(f"""SELECT DISTINCT lower(trim(email)) FROM read_parquet(
        '{night.lake_dir}/raw/crm/erasure_requests/*/part-0.parquet')""").fetchall()}
    assert erased, "the generator plants erasure requests"
    exported = {r[0] for r in duckdb.sql(f"""SELECT DISTINCT lower(trim(email)) FROM read_parquet(
        '{night.exports_dir}/*/segments/*.parquet', union_by_name = true)""").fetchall()}
    assert exported and not (exported & erased)


def test_rerunning_a_night_changes_nothing(night):
    ds = NIGHTS[-1]
    before = _files(night.exports_dir / ds.isoformat())
    counts = "SELECT (SELECT count(*) FROM customer_profiles), (SELECT count(*) FROM orders), " \
             "(SELECT count(*) FROM customer_events), (SELECT count(*) FROM identity_map)"
    with duckdb.connect(str(night.warehouse_path), read_only=True) as con:
        tables_before = con.execute(counts).fetchone()
    _run(ds, night, [s for s in STEPS if s != "sync"])
    with duckdb.connect(str(night.warehouse_path), read_only=True) as con:
        assert con.execute(counts).fetchone() == tables_before
    assert _files(night.exports_dir / ds.isoformat()) == before


def test_a_new_segment_file_is_built_and_exported_with_no_other_change(night):
    segment = night.project_dir / "dbt_project" / "models" / "segments" / "e2e_known_in_berlin.sql"
    segment.write_text("select unified_id from {{ ref('customer_profiles') }}\n"
                       "where email is not null\n")
    ds = NIGHTS[-1]
    _run(ds, night, ["build_segments", "gate_segments", "export"])
    manifest = json.loads((night.exports_dir / ds.isoformat() / "manifest.json").read_text())
    new = next(s for s in manifest["segments"] if s["name"] == "e2e_known_in_berlin")
    assert new["rows"] > 0
    assert (night.exports_dir / ds.isoformat() / "segments" / "e2e_known_in_berlin.csv").exists()


def test_a_bad_segment_stops_the_night_before_anything_leaves(night):
    bad = night.project_dir / "dbt_project" / "models" / "segments" / "e2e_ghosts.sql"
    bad.write_text("select 'u_does_not_exist' as unified_id\n")
    with pytest.raises(QualityGateError, match="segment.e2e_ghosts"):
        _run(BAD_NIGHT, night)
    assert not (night.exports_dir / BAD_NIGHT.isoformat()).exists()
    assert (night.exports_dir / "latest").resolve().name == NIGHTS[-1].isoformat()
    bad.unlink()


def test_a_cart_through_the_intake_reaches_only_a_consenting_person_once(night):
    """The trigger path on a real nightly warehouse: its published context, identity map and
    consent decide; the intake and runner are the real ones (docs/triggers.md)."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from personalization.intake import create_app, signature
    from personalization.triggers import run_once
    from personalization.triggers.senders import drop_files

    settings = night.model_copy(update={"intake_secret": SecretStr("e2e"),
                                        "triggers_dir": REPO / "triggers"})
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    pick = """select m.source_id, p.email from identity_map m
              join customer_profiles p using (unified_id)
              where m.source = 'shop' and p.is_contactable = {} and p.email is not null
                and p.country in ('DE', 'GB', 'FR', 'NL') order by m.source_id limit 1"""
    yes, yes_email = con.execute(pick.format("true")).fetchone()
    no, _ = con.execute(pick.format("false")).fetchone()
    con.close()
    at = datetime(2026, 6, 6, 10, 0, tzinfo=UTC)
    body = json.dumps([{"event_id": f"e2e-{c}", "occurred_at": at.isoformat(), "customer_id": c,
                        "event_type": "add_to_cart", "sku": None} for c in (yes, no)]).encode()
    client = TestClient(create_app(settings, clock=lambda: at))
    assert client.post("/events", content=body,
                       headers={"X-Signature": signature(b"e2e", body)}).status_code == 202
    for minutes in (31, 45):
        run_once(settings, now=(at + timedelta(minutes=minutes)).replace(tzinfo=None))
    sent = [json.loads(p.read_text()) for p in drop_files(settings, "cart_abandoned")]
    assert [s["email"] for s in sent] == [yes_email]
