"""Compile one inline SQL statement with the project's macros (`dbt compile --inline`), for
tests that run a macro's SQL on their own rows."""

from __future__ import annotations

from pathlib import Path

from personalization.config import load_settings


def compiled_inline(sql: str, tmp_path: Path) -> str:
    from dbt.cli.main import dbtRunner

    from personalization.warehouse.dbt import dbt_environment

    settings = load_settings(home=tmp_path)
    settings.home.mkdir(parents=True, exist_ok=True)
    with dbt_environment(settings):
        result = dbtRunner().invoke([
            "--quiet", "compile", "--inline", sql, "--project-dir", str(settings.project_dir),
            "--profiles-dir", str(settings.project_dir), "--target-path",
            str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")])
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code
