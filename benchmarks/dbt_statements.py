"""Where a dbt call's time goes, statement by statement, from the home's dbt log.

    python benchmarks/dbt_statements.py --home DIR [--call -1] [--top 40] [--node PATTERN]

dbt writes every SQL statement it runs, and how long DuckDB took for it, to
`<home>/logs/dbt.log` (debug level, always on; rotated at 10 MB into `dbt.log.1`, ...,
which are read too). A node's time in run_results.json is the sum
of its statements and dbt's own work between them; this lists the statements, slowest first:
the model's select (`create ... as`), the delete and insert of an incremental strategy, its
hooks, and `COMMIT`, which pays DuckDB's checkpoint when the write-ahead log has grown past
16 MB (the model that happens to cross it pays for the writes of the models before). `--call`
picks one dbt invocation of the log (-1: the last; a night's `build_marts` is the
invocation before the segments' two). Prints the statements and the time per kind.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

_STAMP = r"(\d\d:\d\d:\d\d\.\d+)"
_START = re.compile(_STAMP + r" \[info \] \[MainThread\]: Running with dbt=")
_ON = re.compile(_STAMP + r" \[debug\] \[([^\]]+)\]: On ([^:]+): (.*)")
_STATUS = re.compile(_STAMP + r" \[debug\] \[([^\]]+)\]: SQL status: \S+ in ([\d.]+) seconds")
_NEW_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ ")
_COMMENT = re.compile(r"/\*.*?\*/")


def invocations(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) line ranges of the log's dbt invocations, oldest first."""
    starts = [i for i, line in enumerate(lines) if _START.match(line)]
    return list(zip(starts, [*starts[1:], len(lines)], strict=False))


def statements(lines: list[str]) -> list[dict]:
    """Every statement with a status line: node, seconds and the SQL (comments dropped)."""
    pending: dict[str, tuple[str, str]] = {}  # thread -> (node, sql)
    out = []
    i = 0
    while i < len(lines):
        on = _ON.match(lines[i])
        if on:
            _, thread, node, first = on.groups()
            j = i + 1
            while j < len(lines) and not _NEW_LINE.match(lines[j]):
                j += 1
            sql = " ".join([first, *(line.strip() for line in lines[i + 1:j])])
            parts = node.split(".")  # model.<project>.<name>, test.<project>.<name>.<hash>
            pending[thread] = (parts[2] if len(parts) > 2 else node, _COMMENT.sub("", sql).strip())
            i = j
            continue
        status = _STATUS.match(lines[i])
        if status and status.group(2) in pending:
            node, sql = pending.pop(status.group(2))
            out.append({"node": node, "seconds": float(status.group(3)), "sql": sql})
        i += 1
    return out


def kind(sql: str) -> str:
    """What a statement does, by its first words."""
    words = sql.lower().split()
    if not words:
        return "other"
    if words[0] == "create":
        return "create (select)" if " as " in f" {sql.lower()} " else "create"
    if words[0] in ("select", "with"):
        return "select (tests, dbt's queries)"
    return words[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--call", type=int, default=-1, help="which dbt invocation (-1: the last)")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--node", default="", help="only nodes whose name contains this")
    args = ap.parse_args(argv)
    log = args.home / "logs" / "dbt.log"
    if not log.exists():
        print(f"no dbt log at {log}: run a night in that home first", file=sys.stderr)
        return 2
    # dbt rotates its log at 10 MB (dbt.log.1 the newest backup): read them oldest first.
    rotated = sorted(log.parent.glob("dbt.log.*"), key=lambda p: -int(p.suffix[1:])
                     if p.suffix[1:].isdigit() else 0)
    lines = [line for path in (*rotated, log)
             for line in path.read_text(encoding="utf-8", errors="replace").split("\n")]
    calls = invocations(lines)
    if not calls or not -len(calls) <= args.call < len(calls):
        print(f"{log} holds {len(calls)} dbt invocation(s); --call {args.call} is not one",
              file=sys.stderr)
        return 2
    first, end = calls[args.call]
    found = [s for s in statements(lines[first:end]) if args.node in s["node"]]
    print(f"{lines[first][:15]}: {len(found)} statements, {sum(s['seconds'] for s in found):.1f} s")
    for s in sorted(found, key=lambda s: -s["seconds"])[:args.top]:
        print(f"{s['seconds']:7.2f}  {s['node'][:44]:44}  {s['sql'][:110]}")
    by_kind: dict[str, float] = defaultdict(float)
    for s in found:
        by_kind[kind(s["sql"])] += s["seconds"]
    print("by kind: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                  sorted(by_kind.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
