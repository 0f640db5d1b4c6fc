"""Money sums are exact (dbt_project/macros/exact_sum.sql): a rerun of a night gives the same
revenue, cart value and spend whatever order DuckDB's threads add the amounts in."""

import duckdb

from tests.dbt_inline import compiled_inline


def test_a_sum_of_amounts_does_not_depend_on_the_order_they_are_added_in(tmp_path):
    # Added as doubles, 1e16 + 1 rounds to 1e16: in this order the sum is 1.0, in the reverse
    # order 0.0; the same rows, two answers (and neither is 2).
    amounts = [1e16, 1.0, -1e16, 1.0]
    compiled = compiled_inline("select {{ exact_sum('amount') }} as total from amounts", tmp_path)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    totals, plain = [], []
    for ordered in (amounts, amounts[::-1]):
        con.execute("CREATE OR REPLACE TABLE amounts AS SELECT unnest(?::DOUBLE[]) AS amount", [ordered])
        plain.append(con.execute("SELECT sum(amount) FROM amounts").fetchone()[0])
        totals.append(con.execute(compiled).fetchone()[0])
    assert plain == [1.0, 0.0]
    assert totals == [2.0, 2.0]
