"""All errors the product raises on purpose. Each carries enough context for one clear line."""


class PersonalizationError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigError(PersonalizationError):
    """Settings are missing or invalid."""


class SourceMissingError(PersonalizationError):
    """A source system did not deliver a file it was expected to deliver."""


class DiskSpaceError(PersonalizationError):
    """A step ran out of disk, or checked first and found too little (then it changed nothing)."""


class ExtractError(PersonalizationError):
    """An extract could not read or write its files."""


class WarehouseError(PersonalizationError):
    """dbt failed to build or test a model."""


class WarehouseLockedError(WarehouseError):
    """Another process holds DuckDB's single write lock on the warehouse file."""


class QualityGateError(PersonalizationError):
    """An error-severity expectation failed: nothing downstream may run."""


class ScoringError(PersonalizationError):
    """Training or scoring failed."""


class ExportError(PersonalizationError):
    """An export could not be written or published."""


class SyncError(PersonalizationError):
    """An ESP sync failed after all retries."""


class SendOutcomeUnknown(SyncError):
    """A non-idempotent send may or may not have reached the ESP (lost response)."""


class TriggerRunnerBusy(PersonalizationError):
    """Another trigger runner holds the state file; this tick is skipped."""
