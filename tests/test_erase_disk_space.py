"""A copy of the warehouse that cannot fit on its disk is refused before anything changes.

The erase step copies the whole warehouse (what makes deleted values unreadable) on the
night the copy is due (`erasure_compaction_days` after the first erasure it owes): at 3M
people that is ≈ 30 GB. Without room for it, the step used to rewrite the
landing copy, the lake and every past export first and then fail on DuckDB's "No space left
on device". It now checks first, says what it needs in one line and leaves every file as it
was; the requests stay pending and the next run applies them. Real dbt build, real erase."""

from __future__ import annotations

import hashlib
import shutil
import types
from datetime import date

import duckdb
import pytest
from test_warehouse import contact, query, ts, write_lake

from personalization.config import load_settings
from personalization.exceptions import DiskSpaceError
from personalization.privacy import erase, ledger, redact
from personalization.warehouse import build

DAY = date(2026, 4, 1)
EVE = "eve.gone@own-mail.de"
LAKE = {
    ("crm", "contacts"): [
        contact("c1", EVE, "Eve", "Gone", "+49 30 3333333", "DE", "2025-03-01T00:00:00", True,
                "2025-03-01T00:00:00"),
    ],
    ("crm", "erasure_requests"): [{"email": EVE, "requested_at": ts("2026-03-31T09:00:00")}],
    ("shop", "customers"): [], ("shop", "products"): [], ("shop", "orders"): [],
    ("shop", "order_items"): [], ("pixel", "events"): [],
}


def _files(home) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file() and "logs" not in p.parts
            and "dbt_target" not in p.parts and "privacy" not in p.parts}


def _disk_with(free: int):
    return lambda path: types.SimpleNamespace(total=10**12, used=10**12 - free, free=free)


@pytest.fixture(scope="module")
def built_home(tmp_path_factory):
    """One marts build for the module; each test erases on its own copy of the home."""
    settings = load_settings(home=tmp_path_factory.mktemp("erase_disk") / "home", esp_targets=[],
                             dbt_tests=False)
    write_lake(settings.lake_dir, DAY, LAKE)
    build(DAY, "marts", settings)
    return settings.home


@pytest.fixture
def settings(built_home, tmp_path):
    """A copy of the home whose erasures are copied out of the file the same night."""
    shutil.copytree(built_home, tmp_path / "home")
    return load_settings(home=tmp_path / "home", esp_targets=[], dbt_tests=False,
                         erasure_compaction_days=0)


@pytest.fixture
def weekly(settings):
    """The same home with the default: one copy for a week of erasure nights."""
    return settings.model_copy(update={"erasure_compaction_days": 7})


def test_erase_without_room_for_the_warehouse_copy_changes_nothing(settings, monkeypatch):
    before = _files(settings.home)
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(1024))
    with pytest.raises(DiskSpaceError, match=r"erase: copying the warehouse .* needs about .* "
                                             r"which has 0\.0 GiB.*stay pending"):
        erase(DAY, settings)
    assert _files(settings.home) == before  # no lake, landing or warehouse file rewritten
    assert not list(settings.warehouse_path.parent.glob(f".{settings.warehouse_path.name}.*"))

    monkeypatch.undo()  # room again: the pending request is applied
    erase(DAY, settings)
    assert query(settings, "select count(*) from stg_crm__contact_versions") == [(0,)]
    lake = settings.lake_dir / "raw" / "crm" / "contacts" / f"ds={DAY}" / "part-0.parquet"
    assert duckdb.sql(f"select count(*) from '{lake}'").fetchall() == [(0,)]


def test_a_copy_is_refused_when_the_disk_cannot_hold_its_live_data(tmp_path, monkeypatch):
    settings = load_settings(home=tmp_path / "home", esp_targets=[])
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create table t as select range as i, md5(range::varchar) as s from range(200000)")
    size = settings.warehouse_path.stat().st_size
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(size // 4))
    with pytest.raises(DiskSpaceError, match="compact: copying the warehouse"):
        redact.compact_warehouse(settings)
    assert settings.warehouse_path.stat().st_size == size
    assert not list(settings.warehouse_path.parent.glob(f".{settings.warehouse_path.name}.*"))
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(size * 2))
    redact.compact_warehouse(settings)  # room enough: it copies
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from t").fetchone() == (200000,)


def test_a_night_whose_keys_match_no_warehouse_row_needs_no_room(settings, monkeypatch):
    """A pending key that matches nothing (the key of an order that arrived for a person
    erased earlier and was removed on arrival): nothing to delete, so no copy and no check."""
    erase(DAY, settings)  # Eve's request, with room
    con = duckdb.connect()
    ledger.register_ledger(con, settings)
    con.execute("CREATE TEMP TABLE late_keys AS SELECT sha256('order:o-late') AS key_sha256, "
                "'order' AS key_kind")
    assert ledger.add_keys(con, settings, "late_keys", DAY) == 1
    con.close()
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(1024))
    report = erase(DAY, settings)
    assert report.details["keys_applied"] == 1
    assert report.details["rows_removed"]["warehouse"] == 0


def _erase_with_the_copy_cut(settings, monkeypatch) -> None:
    """Run erase with its warehouse copy failing after the deletes were committed."""
    def cut(_settings):
        raise OSError("copy interrupted")

    monkeypatch.setattr(redact, "compact_warehouse", cut)
    with pytest.raises(OSError, match="interrupted"):
        erase(DAY, settings)
    monkeypatch.undo()


def test_a_copy_interrupted_after_the_deletes_is_made_on_the_next_run(settings, monkeypatch):
    """The deletes are committed, then the copy fails (power cut, disk): the next run finds no
    row to delete but still owes the copy that makes the deleted values unreadable."""
    copies = []
    _erase_with_the_copy_cut(settings, monkeypatch)
    assert query(settings, "select count(*) from stg_crm__contact_versions") == [(0,)]
    real_copy = redact.compact_warehouse
    monkeypatch.setattr(redact, "compact_warehouse", lambda s: (copies.append(s), real_copy(s)))
    report = erase(DAY, settings)
    assert report.details["rows_removed"].get("warehouse", 0) == 0  # nothing left to delete
    assert copies == [settings]  # ... and the copy made all the same
    assert not list(settings.warehouse_path.parent.glob(f".{settings.warehouse_path.name}.*"))
    erase(DAY, settings)
    assert copies == [settings]  # owed once, not every night


def test_any_whole_copy_settles_a_copy_owed(settings, monkeypatch):
    """A compaction (or a rekey's copy) after an interrupted one clears the debt."""
    _erase_with_the_copy_cut(settings, monkeypatch)
    owed = redact.compaction_marker(settings.warehouse_path)
    assert owed.exists()
    redact.compact_warehouse(settings)
    assert not owed.exists()


def _copies(monkeypatch) -> list:
    made, real_copy = [], redact.compact_warehouse
    monkeypatch.setattr(redact, "compact_warehouse", lambda s: (made.append(s), real_copy(s)))
    return made


def test_the_copy_waits_for_a_week_of_erasures(weekly, monkeypatch):
    """Erased rows leave every table the night of the request; the file is copied on the
    first night `erasure_compaction_days` later, with or without requests that night."""
    copies, owed = _copies(monkeypatch), redact.compaction_marker(weekly.warehouse_path)
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(1024))  # no copy due: no room needed
    report = erase(DAY, weekly)
    assert query(weekly, "select count(*) from stg_crm__contact_versions") == [(0,)]
    assert report.details["warehouse_compaction"] == {
        "owed": True, "owed_since": DAY.isoformat(), "due_on": "2026-04-08", "copied": False}
    assert owed.read_text().strip() == DAY.isoformat() and copies == []
    assert erase(date(2026, 4, 7), weekly).details["warehouse_compaction"]["copied"] is False
    assert copies == []

    # due, and no room: the night stops with what it needs; the copy stays owed
    with pytest.raises(DiskSpaceError, match="compact: copying the warehouse"):
        erase(date(2026, 4, 8), weekly)
    assert owed.exists()
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(10**11))
    report = erase(date(2026, 4, 8), weekly)
    assert report.details["warehouse_compaction"]["copied"] is True
    assert len(copies) == 2 and not owed.exists()
    assert EVE.encode() not in weekly.warehouse_path.read_bytes()
    assert erase(date(2026, 4, 9), weekly).details["warehouse_compaction"] == {"owed": False}
    assert len(copies) == 2


def test_a_copy_owed_before_it_could_wait_is_made_at_once(weekly, monkeypatch):
    """A marker without a night (written by code that copied every night, then interrupted)
    is owed since ever: the next night copies, whatever the setting."""
    copies, owed = _copies(monkeypatch), redact.compaction_marker(weekly.warehouse_path)
    owed.touch()
    report = erase(DAY, weekly)
    assert copies == [weekly] and not owed.exists()
    assert report.details["warehouse_compaction"] == {
        "owed": False, "owed_since": None, "due_on": None, "copied": True}


def test_a_later_erasure_keeps_the_night_the_copy_is_owed_since(weekly, monkeypatch):
    owed = redact.compaction_marker(weekly.warehouse_path)
    owed.write_text("2026-03-30\n")  # an earlier erasure night's debt, due on 04-06
    _copies(monkeypatch)
    monkeypatch.setattr(shutil, "disk_usage", _disk_with(1024))
    with pytest.raises(DiskSpaceError, match="erase: copying the warehouse"):
        erase(date(2026, 4, 6), weekly)  # Eve's request on the night the copy is due
    assert query(weekly, "select count(*) from stg_crm__contact_versions") == [(1,)]
    assert owed.read_text().strip() == "2026-03-30"
    monkeypatch.undo()
    erase(DAY, weekly)  # her request on a night before it is due
    assert query(weekly, "select count(*) from stg_crm__contact_versions") == [(0,)]
    assert owed.read_text().strip() == "2026-03-30"
