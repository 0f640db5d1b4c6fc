"""dbt unit tests of every segment (the `unit_tests:` blocks in models/segments/*.yml) run
for real with dbtRunner: hand-made rows on each boundary (3 vs 4 views, 29 vs 31 days,
500 vs 500.01, the 48-hour edge, ...)."""

from __future__ import annotations

from datetime import date

from personalization.config import REPO_ROOT

# Derived from the files, so a new segment without a unit test fails here.
SEGMENTS = {p.stem for p in (REPO_ROOT / "dbt_project" / "models" / "segments").glob("*.sql")}


def test_the_segment_list_is_read_from_the_segment_files():
    assert {"vip", "cart_abandoners", "big_spenders"} <= SEGMENTS and len(SEGMENTS) >= 12


def _statuses(outcome) -> dict[str, str]:
    return {r.node.name: str(r.status) for r in outcome.result.results}


def test_every_segment_unit_test_passes(segments_project):
    outcome = segments_project.dbt("test", "--select", "test_type:unit")

    statuses = _statuses(outcome)
    assert outcome.success, {k: v for k, v in statuses.items() if v != "pass"}
    tested = {r.node.tested_node_unique_id.split(".")[-1] for r in outcome.result.results}
    assert tested == SEGMENTS, "every segment has at least one unit test"
    assert len(statuses) >= len(SEGMENTS)


def test_unit_tests_catch_a_moved_threshold(segments_project):
    # With the spend threshold lowered to 499.99, the 500.00 row qualifies: the test must fail.
    outcome = segments_project.dbt("test", "--select", "big_spenders,test_type:unit",
                                   extra_vars={"big_spenders_min_spend": 499.99})

    assert not outcome.success
    assert _statuses(outcome) == {"big_spenders_threshold_and_window": "fail"}


def _night(project, ds) -> tuple[bool, set[str]]:
    """Whether the segments build ran unit tests, and the segments that failed."""
    from personalization.warehouse.dbt import build_segments

    report = build_segments(ds, project.settings)
    return report.details["unit_tests"] > 0, set(report.details["failed_segments"])


def test_the_nights_run_the_unit_tests_once_per_version_of_the_project(segments_project):
    p = segments_project
    ds = date(2026, 3, 31)
    p.write_scores(ds.isoformat(), [])
    assert _night(p, ds) == (True, set())
    assert _night(p, ds) == (False, set())  # the same project: they passed already
    # An edit of a segment (as an analyst deploys one without CI): they run again, once.
    vip = p.segments_dir / "vip.sql"
    vip.write_text(vip.read_text() + "\n-- edited\n")
    assert _night(p, ds) == (True, set())
    assert _night(p, ds) == (False, set())
    # A var a unit test pins, moved: its segment fails, nothing is recorded, and every later
    # night runs them until they pass.
    config = p.root / "dbt_project.yml"
    config.write_text(config.read_text().replace("big_spenders_min_spend: 500 ",
                                                 "big_spenders_min_spend: 499.99 "))
    assert _night(p, ds) == (True, {"big_spenders"})
    assert _night(p, ds) == (True, {"big_spenders"})
