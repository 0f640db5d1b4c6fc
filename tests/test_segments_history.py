"""Segment membership history and daily counts across logical dates: enter, stay, leave,
expiry, idempotent reruns and segments skipped after a failed build."""

from __future__ import annotations

from datetime import date

D1, D2 = "2026-03-30", "2026-03-31"
RECENT = "2026-03-29 12:00:00"


def _build(project, ds: str, **extra_vars) -> None:
    # The segments stage in two dbt calls: segments first, then the history that reads them.
    for selector in (["tag:scores", "vip"], ["tag:segment_history"]):
        outcome = project.dbt("build", "--select", *selector, ds=ds, extra_vars=extra_vars)
        failed = [(r.node.name, r.message) for r in outcome.result.results
                  if str(r.status) not in ("success", "pass")]
        assert outcome.success and not failed, failed


def _history(project) -> list[tuple]:
    return project.query("select segment, unified_id, entered_on, left_on "
                         "from segment_membership_history order by all")


def _counts(project) -> list[tuple]:
    return project.query('select segment, as_of_date, size, entered, "left" '
                         "from segment_daily_counts where segment = 'vip' order by all")


def test_history_enter_stay_leave_expiry_and_reruns(segments_project):
    p = segments_project
    p.load("customer_profiles", [
        {"unified_id": "a", "email": "a@example.com", "last_seen_at": RECENT},
        {"unified_id": "b", "email": "b@example.com", "last_seen_at": RECENT},
        {"unified_id": "c", "email": "c@example.com", "last_order_at": RECENT},
        # d has not been seen for over 180 days (vip's expires_after_days): never a member.
        {"unified_id": "d", "email": "d@example.com", "last_seen_at": "2025-09-01 00:00:00"},
    ])
    p.write_scores(D1, [{"unified_id": u, "p_vip": 0.9, "p_churn": 0.1} for u in "abd"])
    p.write_scores(D2, [{"unified_id": "a", "p_vip": 0.95, "p_churn": 0.1},
                        {"unified_id": "b", "p_vip": 0.5, "p_churn": 0.1},
                        {"unified_id": "c", "p_vip": 0.85, "p_churn": 0.1},
                        {"unified_id": "d", "p_vip": 0.99, "p_churn": 0.1}])
    d1, d2 = date.fromisoformat(D1), date.fromisoformat(D2)

    _build(p, D1)
    assert _history(p) == [("vip", "a", d1, None), ("vip", "b", d1, None)]

    _build(p, D2)
    expected = [("vip", "a", d1, None), ("vip", "b", d1, d2), ("vip", "c", d2, None)]
    assert _history(p) == expected
    assert _counts(p) == [("vip", d1, 2, 2, 0), ("vip", d2, 2, 1, 1)]

    _build(p, D2)  # rerun of the same date: exact replacement, nothing doubled
    assert _history(p) == expected
    assert _counts(p) == [("vip", d1, 2, 2, 0), ("vip", d2, 2, 1, 1)]

    # A segment whose build failed is skipped: its history stays as it was.
    p.write_scores(D2, [{"unified_id": "b", "p_vip": 0.9, "p_churn": 0.1}])
    outcome = p.dbt("build", "--select", "tag:segment_history", ds=D2,
                    extra_vars={"segment_history_skip": ["vip"]})
    assert outcome.success
    assert _history(p) == expected

    # Rerunning D1 rewinds the later history (backfills run forward from there).
    _build(p, D1)
    assert _history(p) == [("vip", "a", d1, None), ("vip", "b", d1, None)]
