"""The dbt project's structure rules, checked on dbt's `manifest.json` (`make structure`).

    python -m personalization.warehouse.structure [--manifest target/manifest.json]

Without `--manifest` it runs `dbt parse` into a temporary target first. The rules are the
layers of dbt Labs' structure guide as docs/conventions.md states them:

- `source_outside_staging`: `source()` only in `models/staging/`;
- `staging_reads_model`: a staging model reads its source, never another model;
- `intermediate_reads_mart`: intermediate models read staging and intermediate only, never a
  public layer (marts, scoring, segments, segment history);
- `missing_description`: every model has a YAML entry with a description;
- `public_without_contract`: every public model has `contract: {enforced: true}`;
- `layer_prefix`: `stg_` in staging, `int_` in intermediate;
- `too_many_inputs` / `too_many_joins` / `too_long`: a model reads at most
  `MAX_INPUTS` models, joins at most `MAX_JOINS` times and has at most `MAX_LINES` lines;
- `fanout`: at most `MAX_LEAF_CHILDREN` models read a model and feed nothing further (as
  dbt-project-evaluator's model fanout); segments do not count, reading marts is their job.

Known violations sit in `dbt_project/structure_allowlist.yml`, each with the reason and the
issue that removes it; anything else fails (exit 1). An allowlist entry that no longer
matches a violation is reported, so it can be deleted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from personalization.config import REPO_ROOT

MODELS = "dbt_project/models/"
ALLOWLIST = REPO_ROOT / "dbt_project" / "structure_allowlist.yml"
PUBLIC_LAYERS = ("marts", "scoring", "segments", "segment_history")
PREFIXES = {"staging": "stg_", "intermediate": "int_"}
MAX_INPUTS = 6
MAX_JOINS = 8
MAX_LINES = 150
MAX_LEAF_CHILDREN = 3
_JOIN = re.compile(r"\bjoin\b", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    model: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.rule}: {self.model}" + (f" ({self.detail})" if self.detail else "")


def layer(node: dict[str, Any]) -> str:
    """First folder under `models/`: staging, intermediate, marts, segments, ..."""
    path = node["original_file_path"]
    return path[len(MODELS):].split("/", 1)[0] if path.startswith(MODELS) else ""


def check(manifest: dict[str, Any]) -> list[Violation]:
    """Every rule violation of the models in `manifest` (a parsed manifest.json)."""
    models = {k: v for k, v in manifest["nodes"].items() if v.get("resource_type") == "model"}
    children: dict[str, set[str]] = {k: set() for k in models}
    for uid, node in models.items():
        for parent in node.get("depends_on", {}).get("nodes", []):
            if parent in children:
                children[parent].add(uid)
    out: list[Violation] = []
    for uid, node in models.items():
        name, where = node["name"], layer(node)
        leaves = sorted(models[c]["name"] for c in children[uid]
                        if not children[c] and layer(models[c]) != "segments")
        if len(leaves) > MAX_LEAF_CHILDREN:
            out.append(Violation("fanout", name, ", ".join(leaves)))
        parents = node.get("depends_on", {}).get("nodes", [])
        sources = sorted(p.split(".", 2)[-1] for p in parents if p.startswith("source."))
        refs = [models[p] for p in parents if p in models]
        if sources and where != "staging":
            out.append(Violation("source_outside_staging", name, ", ".join(sources)))
        if where == "staging" and refs:
            out.append(Violation("staging_reads_model", name,
                                 ", ".join(sorted(r["name"] for r in refs))))
        if where == "intermediate":
            public = sorted(r["name"] for r in refs if layer(r) in PUBLIC_LAYERS)
            if public:
                out.append(Violation("intermediate_reads_mart", name, ", ".join(public)))
        if not node.get("patch_path") or not (node.get("description") or "").strip():
            out.append(Violation("missing_description", name))
        if where in PUBLIC_LAYERS and not node.get("config", {}).get("contract", {}).get("enforced"):
            out.append(Violation("public_without_contract", name))
        prefix = PREFIXES.get(where)
        if prefix and not name.startswith(prefix):
            out.append(Violation("layer_prefix", name, f"{where} models start with {prefix}"))
        if len(refs) > MAX_INPUTS:
            out.append(Violation("too_many_inputs", name, f"{len(refs)} > {MAX_INPUTS}"))
        code = node.get("raw_code", "")
        joins = len(_JOIN.findall(code))
        if joins > MAX_JOINS:
            out.append(Violation("too_many_joins", name, f"{joins} > {MAX_JOINS}"))
        lines = code.count("\n") + 1
        if lines > MAX_LINES:
            out.append(Violation("too_long", name, f"{lines} lines > {MAX_LINES}"))
    return sorted(out)


def allowlist_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of an allowlist YAML file (none if it is missing); each must say why."""
    entries = (yaml.safe_load(path.read_text()) or []) if path.exists() else []
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            raise ValueError(f"{path}: allowlist entry {entry} has no reason")
    return entries


def load_allowlist(path: Path = ALLOWLIST) -> dict[tuple[str, str], str]:
    """`{(rule, model): reason}`; every entry must say why and which issue removes it."""
    return {(e["rule"], e["model"]): e["reason"] for e in allowlist_entries(path)}


def judge(violations: list[Any], allowed: dict[tuple[str, str], str],
          key: Callable[[Any], tuple[str, str]] = lambda v: (v.rule, v.model),
          ) -> tuple[list[Any], list[tuple[str, str]]]:
    """(violations not on the allowlist, allowlist entries that match no violation)."""
    found = {key(v) for v in violations}
    new = [v for v in violations if key(v) not in allowed]
    stale = sorted(k for k in allowed if k not in found)
    return new, stale


def parse_manifest() -> dict[str, Any]:
    """`dbt parse` of the project into a temporary target; returns the manifest."""
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="dbt-structure-") as target:
        outcome = dbtRunner().invoke(["parse", "--project-dir", str(REPO_ROOT), "--profiles-dir",
                                      str(REPO_ROOT), "--target-path", target,
                                      "--no-partial-parse", "--quiet"])
        if not outcome.success:
            raise SystemExit(f"dbt parse failed: {outcome.exception}")
        return json.loads((Path(target) / "manifest.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the dbt layers on manifest.json.")
    parser.add_argument("--manifest", type=Path, help="a manifest.json (default: dbt parse)")
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text()) if args.manifest else parse_manifest()
    violations = check(manifest)
    new, stale = judge(violations, load_allowlist())
    models = sum(1 for n in manifest["nodes"].values() if n.get("resource_type") == "model")
    for rule, model in stale:
        print(f"allowlist entry no longer needed, delete it: {rule}: {model}")
    for v in new:
        print(f"structure violation: {v}")
    print(f"dbt structure: {models} models, {len(violations) - len(new)} known violations "
          f"allowlisted (dbt_project/structure_allowlist.yml), "
          f"{len(new)} new, {len(stale)} stale allowlist entries")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
