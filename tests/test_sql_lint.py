"""The lint of compiled dbt SQL (personalization/warehouse/sql_lint.py) on hand-made files:
parse errors and rule findings fail it unless allowlisted; dbt's compiled tests are skipped."""

from __future__ import annotations

from personalization.warehouse import sql_lint

GOOD = "select\n    orders.order_id,\n    orders.unified_id\nfrom orders\n"
# A parse error (a keyword where an expression belongs) and an ambiguous column reference.
BROKEN = "select order_id from from orders\n"
AMBIGUOUS = "select a.x, b.x\nfrom a\ninner join b on a.id = b.id\norder by 1, b.x\n"


def _compiled(tmp_path):
    (tmp_path / "marts" / "_marts.yml").mkdir(parents=True)
    (tmp_path / "marts" / "orders.sql").write_text(GOOD)
    (tmp_path / "marts" / "_marts.yml" / "unique_orders_order_id.sql").write_text(BROKEN)
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "broken.sql").write_text(BROKEN)
    (tmp_path / "segments" / "ambiguous.sql").write_text(AMBIGUOUS)
    return tmp_path


def test_parse_errors_and_findings_fail_unless_allowlisted(tmp_path, monkeypatch, capsys):
    compiled = _compiled(tmp_path)
    # dbt's compiled tests (under <file>.yml/) are not models: not linted.
    assert [p.relative_to(compiled).as_posix() for p in sql_lint.model_files(compiled)] == [
        "marts/orders.sql", "segments/ambiguous.sql", "segments/broken.sql"]
    allow = tmp_path / "allow.yml"
    allow.write_text("- file: segments/broken.sql\n  codes: [PRS]\n  reason: sqlfluff's dialect\n"
                     "- file: marts/orders.sql\n  codes: [AL05]\n  reason: gone\n")
    monkeypatch.setattr(sql_lint.load_allowlist, "__defaults__", (allow,))
    assert sql_lint.main(["--compiled", str(compiled)]) == 1
    out = capsys.readouterr().out
    # The ambiguous reference fails; the allowlisted parse error does not; the entry that
    # matches nothing is reported; the clean model has no finding.
    assert "sql lint: segments/ambiguous.sql" in out and "AM06" in out
    assert "sql lint: segments/broken.sql" not in out and "sql lint: marts/" not in out
    assert "no longer needed, delete it: marts/orders.sql AL05" in out
    assert "3 compiled models linted" in out and "1 known findings" in out
