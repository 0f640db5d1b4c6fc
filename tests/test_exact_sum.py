"""Money sums are exact (dbt_project/macros/exact_sum.sql): a rerun of a night gives the same
revenue, cart value and spend whatever order DuckDB's threads add the amounts in."""

import duckdb

from personalization.config import load_settings


def _compiled(sql: str, tmp_path) -> str:
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


def test_a_sum_of_amounts_does_not_depend_on_the_order_they_are_added_in(tmp_path):
    # Added as doubles, 1e16 + 1 rounds to 1e16: in this order the sum is 1.0, in the reverse
    # order 0.0; the same rows, two answers (and neither is 2).
    amounts = [1e16, 1.0, -1e16, 1.0]
    compiled = _compiled("select {{ exact_sum('amount') }} as total from amounts", tmp_path)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    totals, plain = [], []
    for ordered in (amounts, amounts[::-1]):
        con.execute("CREATE OR REPLACE TABLE amounts AS SELECT unnest(?::DOUBLE[]) AS amount", [ordered])
        plain.append(con.execute("SELECT sum(amount) FROM amounts").fetchone()[0])
        totals.append(con.execute(compiled).fetchone()[0])
    assert plain == [1.0, 0.0]
    assert totals == [2.0, 2.0]
