"""A step that runs out of disk stops with one line: the step, and how much each disk the
product writes to has free. The write is real: DuckDB copying to /dev/full, which fails as
a full disk does (errno 28, "No space left on device")."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from personalization import pipeline
from personalization.config import load_settings
from personalization.exceptions import DiskSpaceError


def _writes_to_a_full_disk(ds, settings):
    duckdb.sql("COPY (SELECT range FROM range(100000)) TO '/dev/full' (FORMAT csv)")


def _fails_otherwise(ds, settings):
    raise ValueError("a column is missing")


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")


def test_a_step_out_of_disk_says_so_in_one_line(settings, monkeypatch):
    monkeypatch.setitem(pipeline.STEPS, "gate_lake", _writes_to_a_full_disk)
    with pytest.raises(DiskSpaceError) as raised:
        pipeline.run_step("gate_lake", date(2026, 9, 1), settings)
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith("gate_lake ran out of disk space (")
    # the home's disk is named with what it has free (the landing folder shares it: once)
    assert f"{settings.home} " in line and " GiB free" in line
    assert str(settings.landing_dir) not in line
    assert isinstance(raised.value.__cause__, duckdb.IOException)


def test_other_errors_pass_through_unchanged(settings, monkeypatch):
    monkeypatch.setitem(pipeline.STEPS, "gate_lake", _fails_otherwise)
    with pytest.raises(ValueError, match="a column is missing"):
        pipeline.run_step("gate_lake", date(2026, 9, 1), settings)
