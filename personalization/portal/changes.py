"""What changed per segment between an export and the one before, and which moves are unusual.

A move is judged against the segment's own history, not a fixed threshold: today's
day-over-day log size ratio is compared with the past ones by a robust z-score (median and
MAD, which a single past spike does not inflate). With too little history the quality gate's
own settings decide (`segment_size_change_pct` for segments of at least
`segment_size_min_baseline` rows), so the portal and the gate agree.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from personalization.config import Settings
from personalization.portal import store

# Past day-over-day changes needed before the segment's own history is trusted.
MIN_HISTORY = 5
# |robust z| above this is unusual (3.5 is the usual cut-off for the MAD-based z-score).
ROBUST_Z = 3.5


@dataclass
class SegmentChange:
    """One segment today vs the previous export."""

    name: str
    today: int
    yesterday: int | None  # None: not in the previous export (or there is none)
    entered: int
    left: int
    stale: bool = False
    warning: str | None = None

    @property
    def pct(self) -> float | None:
        """Relative size change (0.25 = +25 %), None without a non-empty previous size."""
        if not self.yesterday:
            return None
        return (self.today - self.yesterday) / self.yesterday


def _ratios(sizes: list[int]) -> list[float]:
    return [math.log(b / a) for a, b in zip(sizes, sizes[1:], strict=False) if a > 0 and b > 0]


def unusual(history: list[int], today: int, settings: Settings) -> str | None:
    """Why `today` is an unusual size after the sizes in `history` (oldest first), or None."""
    if not history:
        return None
    before = history[-1]
    if before > 0 and today == 0:
        return f"emptied: was {before}, now 0"
    if before == 0 or today == 0:
        return None
    change = math.log(today / before)
    past = _ratios(history)
    if len(past) >= MIN_HISTORY:
        median = statistics.median(past)
        mad = statistics.median(abs(r - median) for r in past) * 1.4826
        if mad > 0:
            z = (change - median) / mad
            if abs(z) > ROBUST_Z:
                typical = math.exp(mad) - 1
                return (f"unusual for this segment: {math.exp(change) - 1:+.0%} "
                        f"(day-to-day moves are usually within ±{typical:.0%})")
            return None
        # A segment that never moved: any move is news, but only a big one is a warning.
    if before >= settings.segment_size_min_baseline and \
            abs(today / before - 1) * 100 > settings.segment_size_change_pct:
        return (f"large move: {today / before - 1:+.0%} "
                f"(warning beyond ±{settings.segment_size_change_pct:.0f} %)")
    return None


def what_changed(settings: Settings, export: store.Export) -> list[SegmentChange]:
    """Per segment of `export`: size today and in the previous export, entered, left, warning."""
    dates = [d for d in store.export_dates(settings) if d <= export.ds]  # newest first
    previous = store.load_export(settings, dates[1]) if len(dates) > 1 else None
    out = []
    for seg in export.segments:
        name = str(seg.get("name"))
        history = [h["rows"] for h in store.segment_history(settings, name) if h["ds"] < export.ds]
        prev_seg = previous.segment(name) if previous else None
        change = SegmentChange(
            name=name, today=int(seg.get("rows") or 0),
            yesterday=int(prev_seg.get("rows") or 0) if prev_seg else None,
            entered=int(seg.get("added") or 0), left=int(seg.get("removed") or 0),
            stale=bool(seg.get("stale")))
        if change.stale:
            change.warning = f"stale: the build failed, data from {seg.get('data_ds') or 'nowhere'}"
        elif prev_seg is not None:
            change.warning = unusual(history, change.today, settings)
        out.append(change)
    return out
