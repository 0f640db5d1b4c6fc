"""The command line: clear help, and one readable line (never a traceback) for user mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from personalization.config import load_settings
from personalization.exceptions import ConfigError

COMMANDS = ["generate", "run", "demo", "train", "gate", "export", "sync", "serve",
            "evaluate-identity", "rekey", "segments", "segments list", "segments preview"]


def cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    exe = Path(sys.executable).parent / "personalization"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, cwd=cwd)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = cli(*command.split(), "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout and len(out.stdout.splitlines()) > 3


@pytest.mark.parametrize(("args", "message", "code"), [
    (["run", "--date", "2026-13-01"], "is not a date in YYYY-MM-DD form", 2),
    (["run"], "give --date, or both --from-date and --to-date", 2),
    (["run", "--from-date", "2026-01-05", "--to-date", "2026-01-01"], "--to-date is before", 2),
    (["run", "--date", "2026-01-01", "--only", "explode"], "unknown step(s) ['explode']", 2),
    (["run", "--date", "2026-01-01", "--only", "gate_lake", "--full-refresh"],
     "include build_marts in --only", 2),
    (["generate", "--out", "x", "--customers", "0"], "--customers", 2),
    (["sync", "--esp", "carrier-pigeon"], "unknown ESP 'carrier-pigeon'", 1),
])
def test_user_mistakes_get_one_line_and_no_traceback(tmp_path, args, message, code):
    out = cli(*args, env={"PERSONALIZATION_HOME": str(tmp_path)})
    assert out.returncode == code
    assert "Traceback" not in out.stderr + out.stdout
    assert message in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.strip()]) == 1


def test_missing_source_file_names_the_file(tmp_path):
    out = cli("run", "--date", "2026-01-01", "--only", "extract_crm",
              env={"PERSONALIZATION_HOME": str(tmp_path)})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "contacts.csv" in out.stderr


def test_bad_setting_from_env_is_one_line(tmp_path):
    out = cli("run", "--date", "2026-01-01", env={"PERSONALIZATION_HOME": str(tmp_path),
                                                   "PERSONALIZATION_CLOCK_SKEW_MINUTES": "-3"})
    assert out.returncode == 1
    assert "invalid settings: clock_skew_minutes" in out.stderr and "Traceback" not in out.stderr


def test_settings_from_yaml_env_and_defaults(tmp_path, monkeypatch):
    config = tmp_path / "settings.yml"
    config.write_text(f"home: {tmp_path / 'h'}\nholdout_pct: 10\nesp_targets: [file_drop]\n")
    monkeypatch.setenv("PERSONALIZATION_CONFIG", str(config))
    monkeypatch.delenv("PERSONALIZATION_HOME", raising=False)  # `make test` exports one
    monkeypatch.setenv("PERSONALIZATION_CONFIDENCE_THRESHOLD", "0.9")
    s = load_settings()
    assert s.home == (tmp_path / "h").resolve() and s.holdout_pct == 10
    assert s.confidence_threshold == 0.9  # env beats the file
    assert s.lake_dir == s.home / "lake" and s.warehouse_path == s.home / "warehouse.duckdb"


@pytest.mark.parametrize(("text", "message"), [
    ("holdout_pct: 150\n", "holdout_pct"),
    ("not_a_setting: 1\n", "not_a_setting"),
    ("required_sources: [crm, fax]\n", "unknown source"),
    ("- just\n- a list\n", "must hold a mapping"),
    ("home: [unclosed\n", "not valid YAML"),
])
def test_bad_settings_file_is_a_clear_error(tmp_path, monkeypatch, text, message):
    config = tmp_path / "settings.yml"
    config.write_text(text)
    monkeypatch.setenv("PERSONALIZATION_CONFIG", str(config))
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_missing_settings_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALIZATION_CONFIG", str(tmp_path / "nope.yml"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings()


def test_the_demo_summary_has_one_line_per_step_and_night_with_totals():
    from datetime import date

    from personalization.demo import SummaryLine, summary_lines
    from personalization.observability import StepReport

    d1, d2 = date(2026, 10, 1), date(2026, 10, 2)
    crm = StepReport("extract_crm", "2026-10-01", rows_in=10, rows_out=9, rows_quarantined=1,
                     seconds=1.0)
    shop = StepReport("extract_shop", "2026-10-01", rows_in=5, rows_out=5, seconds=0.5)
    long_step = "publish_trigger_context_with_a_very_long_name"
    lines = summary_lines([
        SummaryLine(d1, "load lake", [crm]), SummaryLine(d1, "load lake", [shop]),
        SummaryLine(d2, "build_marts", [StepReport("build_marts", "2026-10-02", rows_out=100,
                                                   seconds=2.0),
                                        StepReport("build_marts", "2026-10-02", rows_out=1,
                                                   seconds=0.25, status="warning")]),
        SummaryLine(d2, long_step, [StepReport(long_step, "2026-10-02", seconds=0.25)]),
        SummaryLine(d2, "gate_marts", [StepReport("gate_marts", "2026-10-02", status="passed")]),
    ])
    body = [line.split() for line in lines[2:-2]]
    assert body == [
        ["2026-10-01", "load", "lake", "15", "14", "1", "1.5", "ok"],  # the extracts merged
        ["2026-10-02", "build_marts", "0", "101", "0", "2.2", "warning"],
        ["2026-10-02", long_step, "0", "0", "0", "0.2", "ok"],  # never cut
        ["2026-10-02", "gate_marts", "0", "0", "0", "0.0", "passed"],
        ["2026-10-02", "night", "total", "0", "101", "0", "2.5", "warning"],
    ]
    assert lines[-1].split() == ["2", "nights", "total", "15", "115", "1", "4.0", "warning"]
