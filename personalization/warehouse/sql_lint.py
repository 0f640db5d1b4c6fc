"""sqlfluff on the SQL dbt really runs: the compiled models (`make lint`).

    python -m personalization.warehouse.sql_lint [--compiled DIR]

The dbt templater (sqlfluff-templater-dbt) does not install here, and sqlfluff's own Jinja
templater cannot render dbt's `adapter`, `dbt.*` or the project's macros, so it skipped a
third of the models. This compiles every model with `dbt compile` (into a temporary target,
against an empty warehouse: the full-refresh branch of incremental models) and lints the
compiled files with the raw templater, DuckDB dialect: parse errors count like any other.
Layout rules stay with the source lint of `dbt_project/models` (.sqlfluff): compiled SQL
carries the macros' whitespace.

Known findings sit in `dbt_project/sql_lint_allowlist.yml` (file, rule codes, reason); any
other finding fails (exit 1), and an entry that matches nothing is reported as stale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from personalization.config import REPO_ROOT
from personalization.warehouse.structure import allowlist_entries, judge

ALLOWLIST = REPO_ROOT / "dbt_project" / "sql_lint_allowlist.yml"
MODELS = Path("dbt_project") / "models"
# The source lint's exclusions (.sqlfluff) plus layout: see the module docstring.
CONFIG = """\
[sqlfluff]
dialect = duckdb
templater = raw
max_line_length = 0
large_file_skip_byte_limit = 0
rules = core
exclude_rules = layout, ST06, RF04, AL09, AM04, ST05, CV03, AL03, ST03
"""


def compile_models(target: Path) -> Path:
    """`dbt compile` of every model into `target`; returns the folder of compiled models."""
    home = target / "home"
    home.mkdir(parents=True)
    env = {**os.environ, "PERSONALIZATION_HOME": str(home), "DO_NOT_TRACK": "1",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("PERSONALIZATION_WAREHOUSE_PATH", None)
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), "compile", "--project-dir", str(REPO_ROOT), "--profiles-dir", str(REPO_ROOT),
         "--target-path", str(target / "target"), "--log-path", str(target / "logs"),
         "--select", "resource_type:model", "--no-partial-parse", "--quiet"],
        env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"dbt compile failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return target / "target" / "compiled" / "personalization" / MODELS


def model_files(compiled: Path) -> list[Path]:
    """The compiled models (not the tests dbt compiles beside them, under `<file>.yml/`)."""
    return sorted(p for p in compiled.rglob("*.sql")
                  if not any(part.endswith(".yml") for part in p.relative_to(compiled).parts))


def lint(compiled: Path) -> dict[str, list[dict]]:
    """`{model path relative to models/: [violations]}` for every compiled model."""
    paths = model_files(compiled)
    with tempfile.TemporaryDirectory(prefix="sqlfluff-") as tmp:
        config = Path(tmp) / ".sqlfluff"
        config.write_text(CONFIG)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "sqlfluff"), "lint", "--config", str(config),
             "--format", "json", "--disable-progress-bar", "--nocolor",
             "--processes", str(os.cpu_count() or 1),
             *[str(p) for p in paths]],
            capture_output=True, text=True, check=False, cwd=tmp)
    if done.returncode not in (0, 1):
        raise SystemExit(f"sqlfluff failed:\n{done.stderr[-3000:]}")
    found = {p.relative_to(compiled).as_posix(): [] for p in paths}
    for entry in json.loads(done.stdout):
        name = Path(entry["filepath"]).resolve().relative_to(compiled.resolve()).as_posix()
        found[name] = entry["violations"]
    return found


def load_allowlist(path: Path = ALLOWLIST) -> dict[tuple[str, str], str]:
    """`{(model file, rule code): reason}`."""
    return {(e["file"], code): e["reason"] for e in allowlist_entries(path) for code in e["codes"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sqlfluff on dbt's compiled models.")
    parser.add_argument("--compiled", type=Path,
                        help="a compiled models folder (default: dbt compile into a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dbt-lint-") as tmp:
        compiled = args.compiled or compile_models(Path(tmp))
        found = lint(compiled)
    allowed = load_allowlist()
    findings = [(name, v) for name, violations in sorted(found.items()) for v in violations]
    new, stale = judge(findings, allowed, key=lambda f: (f[0], f[1]["code"]))
    seen = set(allowed) - set(stale)
    for name, code in stale:
        print(f"sql lint allowlist entry no longer needed, delete it: {name} {code}")
    for name, v in new:
        print(f"sql lint: {name}:{v['start_line_no']}:{v['start_line_pos']}: "
              f"{v['code']} {v['description']}")
    print(f"sql lint: {len(found)} compiled models linted (sqlfluff, DuckDB dialect), "
          f"{len(seen)} known findings allowlisted (dbt_project/sql_lint_allowlist.yml), "
          f"{len(new)} new")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
