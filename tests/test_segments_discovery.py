"""A new segment is one SQL file + YAML: dbt builds it, `list_segments` finds it, and a
broken segment fails by name without stopping the others. Plus `segments preview`."""

from __future__ import annotations

from datetime import date

import pytest
from rich.console import Console

from personalization.exceptions import WarehouseError
from personalization.warehouse.catalog import list_segments
from personalization.warehouse.preview import preview, segment_preview

NEW_SQL = """
with profiles as (
    select * from {{ ref('customer_profiles') }}
),

final as (
    select unified_id, city
    from profiles
    where city = 'Lisbon'
)

select * from final
"""

NEW_YML = """
version: 2
models:
  - name: lisbon_customers
    description: People who live in Lisbon.
    config:
      contract: {enforced: true}
      meta:
        owner: test-team
        refresh: daily
        expires_after_days: 45
        merge_fields: [FNAME, CITY]
        campaign_id: spring-lisbon
    columns:
      - name: unified_id
        data_type: varchar
        data_tests: [not_null, unique]
      - name: city
        data_type: varchar
"""

# A typo in SQL, and a model whose output breaks its own contract (a missing column).
BROKEN_SQL = "select unified_id, frm {{ ref('customer_profiles') }}\n"
CONTRACT_SQL = "select unified_id from {{ ref('customer_profiles') }}\n"
CONTRACT_YML = """
version: 2
models:
  - name: contract_breaker
    config:
      contract: {enforced: true}
      meta: {owner: test-team}
    columns:
      - name: unified_id
        data_type: varchar
      - name: city
        data_type: varchar
"""

PROFILES = [
    {"unified_id": "u1", "email": "u1@example.com", "city": "Lisbon", "last_seen_at": "2026-03-30 09:00:00"},
    {"unified_id": "u2", "email": "u2@example.com", "city": "Porto", "last_seen_at": "2026-03-30 09:00:00"},
    {"unified_id": "u3", "email": "u3@example.com", "city": "Lisbon", "last_seen_at": "2026-03-30 09:00:00"},
]


def test_new_segment_is_built_and_listed_and_broken_ones_fail_alone(segments_project):
    p = segments_project
    p.load("customer_profiles", PROFILES)
    (p.segments_dir / "lisbon_customers.sql").write_text(NEW_SQL)
    (p.segments_dir / "lisbon_customers.yml").write_text(NEW_YML)
    (p.segments_dir / "broken_segment.sql").write_text(BROKEN_SQL)
    (p.segments_dir / "contract_breaker.sql").write_text(CONTRACT_SQL)
    (p.segments_dir / "contract_breaker.yml").write_text(CONTRACT_YML)

    outcome = p.dbt("build", "--select", "tag:segment", "--exclude", "test_type:unit",
                    ds="2026-03-31")

    results = {r.node.name: r for r in outcome.result.results if r.node.resource_type == "model"}
    assert str(results["broken_segment"].status) == "error"
    assert "syntax error" in results["broken_segment"].message.lower()
    assert str(results["contract_breaker"].status) == "error"
    assert "contract" in results["contract_breaker"].message.lower()
    # Every other segment still built (dbt carries on with independent nodes).
    others = {n: str(r.status) for n, r in results.items()
              if n not in ("broken_segment", "contract_breaker")}
    assert set(others.values()) == {"success"} and len(others) == 13
    assert p.query("select unified_id from lisbon_customers order by 1") == [("u1",), ("u3",)]

    found = {s.name: s for s in list_segments(p.settings)}
    assert "lisbon_customers" in found and "high_purchase_intent" in found
    new = found["lisbon_customers"]
    assert (new.owner, new.expires_after_days, new.merge_fields) == ("test-team", 45, ("FNAME", "CITY"))
    assert new.meta["campaign_id"] == "spring-lisbon"
    assert new.columns == ("unified_id", "city")

    # The history layer picks the new segment up with no edit, and skips the failed ones.
    outcome = p.dbt("build", "--select", "tag:segment_history", ds="2026-03-31",
                    extra_vars={"segment_history_skip": ["broken_segment", "contract_breaker"]})
    assert outcome.success
    assert p.query("select segment, size from segment_daily_counts "
                   "where segment in ('lisbon_customers', 'broken_segment')") == [("lisbon_customers", 2)]


def test_preview_shows_size_and_sample_without_touching_the_manifest(segments_project, tmp_path):
    p = segments_project
    p.load("customer_profiles", PROFILES)
    draft = tmp_path / "lisbon_draft.sql"
    draft.write_text("{{ config(materialized='table') }}\n" + NEW_SQL)

    result = segment_preview(draft, date(2026, 3, 31), p.settings, limit=1)

    assert result.name == "lisbon_draft"
    assert result.size == 2 and result.columns == ("unified_id", "city")
    assert result.rows == (("u1", "Lisbon"),)
    assert not (p.settings.dbt_target_dir / "manifest.json").exists()

    console = Console(record=True, width=100)
    console.print(preview(draft, date(2026, 3, 31), p.settings, limit=5))
    text = console.export_text()
    assert "lisbon_draft" in text and "2 members" in text and "u3" in text

    typo = tmp_path / "typo_segment.sql"
    typo.write_text("select unified_id from {{ ref('customer_profilez') }}\n")
    with pytest.raises(WarehouseError, match="typo_segment.*customer_profilez"):
        segment_preview(typo, date(2026, 3, 31), p.settings)
