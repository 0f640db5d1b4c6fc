"""One settings object for the whole product.

Values come from (highest priority first) keyword arguments, `PERSONALIZATION_*` environment
variables, an optional YAML file (`PERSONALIZATION_CONFIG` or `./personalization.yml`), and
the defaults below. Every path defaults to somewhere under `home`.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from personalization.exceptions import ConfigError

logger = logging.getLogger(__name__)

SOURCES = ("crm", "shop", "pixel")
REPO_ROOT = Path(__file__).resolve().parent.parent


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the optional YAML settings file."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by pydantic here
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("PERSONALIZATION_CONFIG")
        candidate = Path(path) if path else Path("personalization.yml")
        if not candidate.exists():
            if path:
                raise ConfigError(f"config file not found: {candidate}")
            return {}
        try:
            data = yaml.safe_load(candidate.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {candidate} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config file {candidate} must hold a mapping of settings")
        return data


class Settings(BaseSettings):
    """Where things live and the thresholds the pipeline uses."""

    model_config = SettingsConfigDict(env_prefix="PERSONALIZATION_", extra="forbid")

    home: Path = Path(".personalization")
    landing_dir: Path | None = None
    lake_dir: Path | None = None
    exports_dir: Path | None = None
    warehouse_path: Path | None = None
    models_dir: Path | None = None
    quality_dir: Path | None = None
    scores_dir: Path | None = None
    intake_dir: Path | None = None
    triggers_state_dir: Path | None = None
    project_dir: Path = REPO_ROOT

    # Extract
    clock_skew_minutes: int = Field(15, ge=0, le=24 * 60)
    required_sources: list[str] = Field(default_factory=lambda: list(SOURCES))

    # Engine the dbt project builds on (docs/scale_out.md): "duckdb" (embedded, default) or
    # "spark" (dbt-spark session: local mode here, a cluster master in production).
    engine: str = Field("duckdb", pattern="^(duckdb|spark)$")
    spark_master: str = "local[2]"  # e.g. "spark://host:7077", "yarn", "k8s://..."
    spark_schema: str = "personalization"
    spark_shuffle_partitions: int = Field(4, ge=1)  # 4 on one small box; ~2-3 x cores on a cluster
    spark_driver_memory: str = "2g"
    spark_warehouse_dir: Path | None = None  # Spark's tables (Parquet); s3a://... on a cluster
    # Any other Spark confs, applied last (PERSONALIZATION_SPARK_CONF as a JSON object), e.g.
    # {"spark.executor.memory": "16g"} on a cluster.
    spark_conf: dict[str, str] = Field(default_factory=dict)
    # dbt data tests with every build; off only where another engine's run already tested the
    # same SQL on the same data (the Spark equality test).
    dbt_tests: bool = True
    # Nightly, the data tests of the largest incremental tables check the night's rows
    # (docs/performance.md, "Data tests on the night's rows"); on this ISO weekday (7 =
    # Sunday; 0 = never) every row, as on a first build or --full-refresh, so what a slice
    # cannot see (rows no night wrote) is found within a week.
    data_tests_whole_weekday: int = Field(7, ge=0, le=7)

    # DuckDB: spill instead of growing past the limit. A process holds more than the buffer
    # pool (dbt, Python, what DuckDB does not count): at 1M people the nights peaked at 6.9 GiB
    # with 6GB here, 5.0 GiB with 4GB, in the same CPU time (docs/performance.md, "Memory").
    # Raise it for 3M people and more (the 3M nights ran with 6GB).
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = Field(2, ge=1)
    dbt_threads: int = Field(1, ge=1)

    # Models and segments
    confidence_threshold: float = Field(0.8, gt=0, lt=1)
    churn_horizon_days: int = Field(90, ge=7)
    retrain_every_days: int = Field(7, ge=1)
    # Past this many training rows (persons x cut-offs) a deterministic sample of persons is
    # used: the models' AUC stops improving long before, and fit time grows linearly.
    # Learning curve at 1M persons (benchmarks/results/scoring/*-learning-curve.json): from
    # 100k to 300k training rows ROC AUC gains < 0.002 for 3x the fit time.
    training_max_rows: int = Field(150_000, ge=1_000)
    next_best_products_count: int = Field(3, ge=1, le=20)

    # Quality gate
    segment_size_change_pct: float = Field(50.0, gt=0)  # warn beyond ±this % of last run
    segment_size_error_factor: float = Field(3.0, gt=1)  # fail beyond ×/÷ this factor
    segment_size_min_baseline: int = Field(20, ge=0)  # smaller segments are too noisy to judge
    drift_psi_warn: float = Field(0.1, gt=0)
    drift_psi_error: float = Field(0.25, gt=0)

    # Export
    holdout_pct: float = Field(5.0, ge=0, lt=100)
    locale: str = "en_US"
    # ESPs the nightly run syncs to; the file drop needs no credentials.
    esp_targets: list[str] = Field(default_factory=lambda: ["file_drop"])
    # ESP sync: "delta" (from the export deltas) or "mirror" (full list, removes extras).
    esp_mode: str = Field("delta", pattern="^(delta|mirror)$")
    esp_max_retries: int = Field(5, ge=0)
    esp_backoff_base_seconds: float = Field(0.5, ge=0)
    esp_backoff_max_seconds: float = Field(60.0, gt=0)
    esp_timeout_seconds: float = Field(30.0, gt=0)
    esp_poll_interval_seconds: float = Field(2.0, ge=0)
    esp_retry_seed: int | None = None  # fixes the backoff jitter (tests, reproducible runs)
    # Rounds of retrying records an ESP rejected inside an accepted batch (transient errors).
    esp_record_retries: int = Field(3, ge=0)
    # Per-ESP field name overrides, {esp: {export column: ESP field}} (docs/esp.md).
    esp_field_names: dict[str, dict[str, str]] = Field(default_factory=dict)

    # Portal: "password" (users in <home>/portal_users.yml) or "header" (SSO reverse proxy
    # sets X-Forwarded-User; only behind a proxy that strips the header from clients).
    portal_auth: str = Field("password", pattern="^(password|header)$")
    portal_https_only: bool = False  # mark the session cookie Secure (set behind HTTPS)

    # Privacy (docs/privacy.md)
    # Encryption at rest: off unless a key is given (env PERSONALIZATION_ENCRYPTION_KEY or a
    # file). DuckDB needs its httpfs extension (OpenSSL) to write encrypted files; without
    # it, allow its built-in writer, which DuckDB labels not securely encrypted.
    encryption_key: SecretStr | None = None
    encryption_key_file: Path | None = None
    encryption_allow_mbedtls: bool = False
    # The landing folder is the project's copy (rewritten on erasure, kept for the retention
    # window). Set false when it is the source systems' read-only drop zone.
    landing_owned: bool = True
    # Erased rows leave every table the night they are erased; the warehouse file is copied
    # (their old bytes gone from its free blocks too) on the first night at least this many
    # days after the oldest erasure it has not copied yet: one copy for a week of erasure
    # nights. 0 = the same night.
    erasure_compaction_days: int = Field(7, ge=0, le=30)
    # Retention windows, in days (0 = keep forever).
    retention_pixel_events_days: int = Field(396, ge=0)  # 13 months
    retention_quarantine_days: int = Field(30, ge=0)
    retention_exports_days: int = Field(90, ge=0)
    retention_logs_days: int = Field(30, ge=0)

    # Event intake (docs/triggers.md): HMAC-SHA256 secret of the default source, plus optional
    # per-source secrets chosen by the X-Source header.
    intake_secret: SecretStr | None = None
    intake_source_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    intake_max_body_bytes: int = Field(1_000_000, ge=1_000)
    intake_max_events_per_request: int = Field(500, ge=1)
    intake_max_in_flight: int = Field(64, ge=1)  # beyond this, 503 + Retry-After

    # Behavioural triggers (docs/triggers.md)
    triggers_dir: Path | None = None  # rule files; default <project>/triggers
    trigger_target: str = "file_drop"  # ESP the runner sends through
    trigger_quiet_hours: tuple[int, int] = (21, 8)  # local hours [start, end): no sends
    trigger_frequency_cap: int = Field(2, ge=1)  # trigger + campaign emails per person ...
    trigger_frequency_window_hours: int = Field(24, ge=1)  # ... in this many hours
    trigger_event_retention_hours: int = Field(8 * 24, ge=1)  # events the runner keeps

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @field_validator("required_sources")
    @classmethod
    def _known_sources(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; known: {list(SOURCES)}")
        return v

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        defaults = {
            "landing_dir": "landing",
            "lake_dir": "lake",
            "exports_dir": "exports",
            "warehouse_path": "warehouse.duckdb",
            "models_dir": "models",
            "quality_dir": "quality",
            "scores_dir": "scores",
            "intake_dir": "intake",
            "triggers_state_dir": "triggers",
            "spark_warehouse_dir": "spark_warehouse",
        }
        for name, leaf in defaults.items():
            value = getattr(self, name)
            setattr(self, name, (value.expanduser().resolve() if value else self.home / leaf))
        self.triggers_dir = (self.triggers_dir.expanduser().resolve() if self.triggers_dir
                             else self.project_dir / "triggers")
        if self.drift_psi_error < self.drift_psi_warn:
            raise ValueError("drift_psi_error must be >= drift_psi_warn")
        return self

    # Derived locations (not settings of their own).
    @cached_property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt_target"

    @cached_property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @cached_property
    def warehouse_spill_dir(self) -> Path:
        """Where an in-memory connection that works on the warehouse spills: beside it, as
        DuckDB spills for the file database itself (not ./.tmp)."""
        return Path(f"{self.warehouse_path}.tmp")

    def duckdb_config(self, spill: str | Path | None = None) -> dict[str, Any]:
        """The limits every DuckDB connection that reads data at scale runs under.

        Without a memory limit DuckDB keeps up to 80% of the machine's memory as buffers (the
        1M harness's erase step peaked at 20.7 GiB); an in-memory database without a spill
        folder fails past the limit instead of spilling. `spill` is where it spills (created
        here): a folder, or a name for one under <home>/duckdb_tmp. A file database spills
        beside its file without one.
        """
        config: dict[str, Any] = {"memory_limit": self.duckdb_memory_limit,
                                  "threads": self.duckdb_threads}
        if spill is not None:
            folder = spill if isinstance(spill, Path) else self.home / "duckdb_tmp" / spill
            folder.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(folder)
        return config

    def dbt_env(self) -> dict[str, str]:
        """Environment variables the dbt project and profile read."""
        return {
            "PERSONALIZATION_HOME": str(self.home),
            "PERSONALIZATION_LAKE_DIR": str(self.lake_dir),
            "PERSONALIZATION_WAREHOUSE_PATH": str(self.warehouse_path),
            "PERSONALIZATION_SCORES_DIR": str(self.scores_dir),
            "PERSONALIZATION_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "PERSONALIZATION_DUCKDB_THREADS": str(self.duckdb_threads),
            "PERSONALIZATION_DBT_THREADS": str(self.dbt_threads),
            "PERSONALIZATION_ENGINE": self.engine,
            # profiles.yml's output; encryption at rest (below) applies to DuckDB only
            **({"PERSONALIZATION_DBT_TARGET": "spark"} if self.engine == "spark" else {}),
            "PERSONALIZATION_SPARK_SCHEMA": self.spark_schema,
            **self._encryption_env(),
        }

    def _encryption_env(self) -> dict[str, str]:
        """The key for dbt's connection plugin (personalization.privacy.dbt_plugin)."""
        from personalization.privacy.encryption import key

        secret = key(self)
        if secret is None:
            return {}
        from personalization.privacy.encryption import parquet_read_options, warehouse_alias

        return {"PERSONALIZATION_ENCRYPTION_KEY": secret,
                "PERSONALIZATION_ENCRYPTION_ALLOW_MBEDTLS": str(self.encryption_allow_mbedtls).lower(),
                # profiles.yml target, its catalog name, and the lake sources' read option
                "PERSONALIZATION_DBT_TARGET": "duckdb_encrypted",
                "PERSONALIZATION_WAREHOUSE_ALIAS": warehouse_alias(self),
                "PERSONALIZATION_PARQUET_READ_OPTIONS": parquet_read_options(self)}


@lru_cache(maxsize=4)
def _project_vars(path: str, mtime_ns: int) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return dict(data.get("vars") or {})


def dbt_vars(project_dir: Path) -> dict[str, Any]:
    """The `vars:` of `dbt_project.yml` (empty when it cannot be read)."""
    path = project_dir / "dbt_project.yml"
    if not path.is_file():  # a portal deployed without the dbt project: show the brackets
        return {}
    try:
        return _project_vars(str(path), path.stat().st_mtime_ns)
    except (OSError, yaml.YAMLError) as e:
        logger.warning("cannot read dbt vars from %s: %s", path, e)
        return {}


def dbt_var(project_dir: Path, name: str) -> Any:
    """One var of `dbt_project.yml` that code outside dbt relies on (ConfigError when absent)."""
    value = dbt_vars(project_dir).get(name)
    if value is None:
        raise ConfigError(f"{project_dir / 'dbt_project.yml'} has no var {name}")
    return value


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation problems into one readable ConfigError."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
