"""Segment exports for marketers and ESPs: files, merge fields, consent, deltas, A/B.

Public surface: `publish` (the pipeline step), `load_merge_fields`, the assignment rules
(`is_holdout`, `variant`) and `suppress` (record bounces/complaints as hashes).

Modules, one job each: `publisher` (the coordinator: temp folder, gate, atomic swap),
`segments` (one segment's files), `stale` (carry-over of a segment whose build failed),
`run_results` (which segments failed), `erasures` (erasures.csv, consent.parquet), `consent`
(who may be mailed), `merge_fields`, `assignment` (A/B, holdout), `deltas`, `mailable`,
`exclusions`, `files`, `manifest`, `suppressions`.
"""

from personalization.export.assignment import is_holdout, variant
from personalization.export.merge_fields import load_merge_fields
from personalization.export.publisher import publish
from personalization.export.suppressions import suppress

__all__ = ["is_holdout", "load_merge_fields", "publish", "suppress", "variant"]
