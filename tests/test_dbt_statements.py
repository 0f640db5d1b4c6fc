"""benchmarks/dbt_statements.py reads dbt's debug log: statements, their node and seconds."""

from __future__ import annotations

from benchmarks.dbt_statements import invocations, kind, main, statements

# Lines as dbt 1.11 writes them to logs/dbt.log (two invocations; a multi-line statement, a
# BEGIN, a test whose node id ends in a hash, and a line that is not a statement).
LOG = """\
00:19:46.000001 [info ] [MainThread]: Running with dbt=1.11.16
00:19:46.100000 [debug] [Thread-1  ]: On model.personalization.old_model: select 1
00:19:46.200000 [debug] [Thread-1  ]: SQL status: OK in 0.500 seconds
00:19:47.181836 [info ] [MainThread]: Running with dbt=1.11.16
00:20:36.289024 [debug] [Thread-16 ]: On model.personalization.int_events__resolved: BEGIN
00:20:36.289882 [debug] [Thread-16 ]: SQL status: OK in 0.001 seconds
00:20:36.290265 [debug] [Thread-16 ]: Using duckdb connection "model.personalization.int_events__resolved"
00:20:36.290500 [debug] [Thread-16 ]: On model.personalization.int_events__resolved: /* {"app": "dbt", "node_id": "model.personalization.int_events__resolved"} */

        delete from "warehouse"."main"."int_events__resolved"
    where delivered_on > date '2026-09-04'
00:20:36.377771 [debug] [Thread-16 ]: SQL status: OK in 0.087 seconds
00:20:37.000000 [debug] [Thread-16 ]: On model.personalization.int_events__resolved: /* {} */ create temporary table "t" as ( select 1 )
00:20:39.000000 [debug] [Thread-16 ]: SQL status: OK in 2.740 seconds
00:20:40.000000 [debug] [Thread-16 ]: On model.personalization.int_events__resolved: COMMIT
00:20:41.000000 [debug] [Thread-16 ]: SQL status: OK in 1.250 seconds
00:20:42.000000 [debug] [Thread-17 ]: On test.personalization.unique_in_recent_deliveries_x_event_id.ad742bb326: /* {} */ select count(*) as failures from t
00:20:43.000000 [debug] [Thread-17 ]: SQL status: OK in 1.310 seconds
"""


def test_statements_of_each_invocation_with_their_node_and_seconds(tmp_path, capsys):
    lines = LOG.split("\n")
    calls = invocations(lines)
    assert len(calls) == 2
    first, end = calls[-1]
    found = statements(lines[first:end])
    assert [(s["node"], s["seconds"]) for s in found] == [
        ("int_events__resolved", 0.001), ("int_events__resolved", 0.087),
        ("int_events__resolved", 2.74), ("int_events__resolved", 1.25),
        ("unique_in_recent_deliveries_x_event_id", 1.31)]
    # The statement's lines are joined and dbt's comment dropped.
    assert found[1]["sql"].startswith('delete from "warehouse"."main"."int_events__resolved" where')
    assert [kind(s["sql"]) for s in found] == [
        "begin", "delete", "create (select)", "commit", "select (tests, dbt's queries)"]

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "dbt.log").write_text(LOG, encoding="utf-8")
    assert main(["--home", str(tmp_path), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "5 statements, 5.4 s" in out
    assert "2.74  int_events__resolved" in out and "old_model" not in out
    assert main(["--home", str(tmp_path), "--call", "-5"]) == 2  # no such invocation
    assert main(["--home", str(tmp_path / "nowhere")]) == 2

    # dbt rotated its log inside the last invocation (dbt.log.1 the newest backup, .2 older):
    # the same statements, read across the files.
    cut, older = len(lines) - 3, 2
    (tmp_path / "logs" / "dbt.log.2").write_text("\n".join(lines[:older]), encoding="utf-8")
    (tmp_path / "logs" / "dbt.log.1").write_text("\n".join(lines[older:cut]), encoding="utf-8")
    (tmp_path / "logs" / "dbt.log").write_text("\n".join(lines[cut:]), encoding="utf-8")
    assert main(["--home", str(tmp_path), "--top", "2"]) == 0
    assert "5 statements, 5.4 s" in capsys.readouterr().out
    # A log with no invocation in it is a message, not a traceback.
    for name in ("dbt.log.1", "dbt.log.2"):
        (tmp_path / "logs" / name).unlink()
    assert main(["--home", str(tmp_path)]) == 2
