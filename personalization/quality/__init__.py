"""Quality gate: Great Expectations suites (in `expectations/`) run on frames from DuckDB.

Public surface: `gate(ds, stage, settings)` validates one stage of the nightly flow (`STAGES`)
and raises `QualityGateError` on an error-severity failure; `validate_export(export_dir, ds,
settings)` validates export files before they are published. Modules: `stages` (which
suites run on which frames), `frames` (the frames, read from the lake and the warehouse),
`drift` (distribution drift against earlier nights), `gx_runner` (every GX call).
"""

from __future__ import annotations

from personalization.quality.stages import STAGES, gate, validate_export

__all__ = ["STAGES", "gate", "validate_export"]
