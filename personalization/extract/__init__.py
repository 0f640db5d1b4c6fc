"""Extract: landing files -> typed Parquet lake, quarantine and load log (one source, one ds).

Public surface:
    extract_source(source, ds, settings) -> list[StepReport]
    FILES: the landing contract (source -> files -> lake tables), see `contracts`.
"""

from personalization.extract.contracts import FILES
from personalization.extract.runner import extract_source

__all__ = ["FILES", "extract_source"]
