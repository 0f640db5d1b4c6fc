"""Deliveries after a landing's last day, for timing more nights on a kept home without
generating a month again.

    python benchmarks/shifted_days.py --landing L --out L2 --days 2

Makes `--out` a landing that links every day of `--landing` and adds `--days` new ones after
its last day: that day's CRM and shop files again, and its pixel file with new event ids
(prefixed `d<k>-`) and every `occurred_at` moved `k` days on. The same cookies come back, so
every key they carry is already known: a night that changes little, the steady case. The
files are synthetic (no new person, order or consent change): compare code on them, do not
report them as the generator's nights.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

_OCCURRED = re.compile(r'"occurred_at":"(\d{4}-\d{2}-\d{2})')


def shift_pixel(source: Path, target: Path, days: int) -> int:
    """Copy a pixel file with new event ids and its dates `days` later; returns lines."""
    def later(match: re.Match) -> str:
        moved = date.fromisoformat(match.group(1)) + timedelta(days=days)
        return f'"occurred_at":"{moved.isoformat()}'

    lines = 0
    with gzip.open(source, "rt", encoding="utf-8") as src, \
            gzip.open(target, "wt", encoding="utf-8", compresslevel=1) as out:
        for line in src:
            line = line.replace('{"event_id":"', f'{{"event_id":"d{days}-', 1)
            out.write(_OCCURRED.sub(later, line, count=1))
            lines += 1
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--landing", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--days", type=int, default=2)
    args = ap.parse_args()
    last = max(p.name for p in (args.landing / "pixel").iterdir())
    for source in ("crm", "shop", "pixel"):
        for day in sorted((args.landing / source).iterdir()):
            link = args.out / source / day.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(day.resolve())
    for k in range(1, args.days + 1):
        new = (date.fromisoformat(last) + timedelta(days=k)).isoformat()
        for source in ("crm", "shop"):
            (args.out / source / new).mkdir(parents=True, exist_ok=True)
            for f in (args.landing / source / last).iterdir():
                shutil.copy(f, args.out / source / new / f.name)
        (args.out / "pixel" / new).mkdir(parents=True, exist_ok=True)
        lines = shift_pixel(args.landing / "pixel" / last / "events.jsonl.gz",
                            args.out / "pixel" / new / "events.jsonl.gz", k)
        print(f"{new}: {lines} pixel lines")


if __name__ == "__main__":
    main()
