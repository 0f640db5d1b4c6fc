"""Encryption at rest: the warehouse file and the Parquet lake, keyed from the environment.

Off by default; one setting turns it on: `PERSONALIZATION_ENCRYPTION_KEY` (the key itself)
or `PERSONALIZATION_ENCRYPTION_KEY_FILE` (a file holding it). Then
- the warehouse is a DuckDB encrypted database (AES-GCM), opened with `ATTACH ...
  (ENCRYPTION_KEY ...)` by every reader and by dbt (through `dbt_plugin`);
- lake Parquet files (raw, quarantine, load log), scores, the erasure ledger and subject
  access exports are written with Parquet modular encryption (`ENCRYPTION_CONFIG
  {footer_key: ...}`) and read with the same key registered by `configure`.

DuckDB 2.0.1 writes encrypted files only with OpenSSL, which its `httpfs` extension brings;
where that extension cannot be installed (no access to DuckDB's extension repository, as
here) `encryption_allow_mbedtls: true` falls back to DuckDB's built-in mbedtls writer,
which DuckDB itself labels "not securely encrypted". See docs/privacy.md.
"""

from __future__ import annotations

import base64
import hashlib
import logging

import duckdb

from personalization.config import Settings
from personalization.exceptions import ConfigError
from personalization.sql import literal

logger = logging.getLogger(__name__)

PARQUET_KEY_NAME = "personalization_lake"


def key(settings: Settings) -> str | None:
    """The configured key (from the setting or the key file), or None when encryption is off."""
    if settings.encryption_key is not None:
        value = settings.encryption_key.get_secret_value()
    elif settings.encryption_key_file is not None:
        try:
            value = settings.encryption_key_file.read_text().strip()
        except OSError as e:
            raise ConfigError(f"cannot read encryption key file {settings.encryption_key_file}: "
                              f"{e.strerror}") from None
    else:
        return None
    if len(value) < 16:
        raise ConfigError("the encryption key must be at least 16 characters long")
    return value


def enabled(settings: Settings) -> bool:
    return key(settings) is not None


def _parquet_key(secret: str) -> str:
    # Parquet modular encryption needs a 128/192/256-bit AES key: derive 256 bits.
    return base64.b64encode(hashlib.sha256(secret.encode()).digest()).decode()


def enable_writer(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Make `con` able to write encrypted files: OpenSSL from httpfs, else mbedtls if allowed."""
    enable_writer_with(con, settings.encryption_allow_mbedtls)


def enable_writer_with(con: duckdb.DuckDBPyConnection, allow_mbedtls: bool) -> None:
    try:
        con.execute("LOAD httpfs")
        return
    except duckdb.Error:
        pass
    if not allow_mbedtls:
        raise ConfigError(
            "encryption at rest needs DuckDB's httpfs extension (OpenSSL) to write encrypted "
            "files and it is not installed; run `INSTALL httpfs` once where DuckDB's extension "
            "repository is reachable, or set encryption_allow_mbedtls: true to use DuckDB's "
            "built-in (not securely encrypted) writer")
    con.execute("SET force_mbedtls_unsafe = 'true'")


def warehouse_cursor(con: duckdb.DuckDBPyConnection,
                     settings: Settings) -> duckdb.DuckDBPyConnection:
    """Another connection to `con`'s database (for another thread), whose default catalog
    is the warehouse too: `USE` is per connection."""
    cursor = con.cursor()
    if enabled(settings):
        cursor.execute(f'USE "{warehouse_alias(settings)}"')
    return cursor


def configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Register the Parquet key (and the encrypted-file writer) on `con`; no-op when off."""
    secret = key(settings)
    if secret is None:
        return
    enable_writer(con, settings)
    register_parquet_key(con, secret)


def register_parquet_key(con: duckdb.DuckDBPyConnection, secret: str) -> None:
    """`PRAGMA add_parquet_key` for the lake key derived from `secret`; remembered on `con`
    (a DuckDB variable) so `copy_options(con)` knows the connection writes encrypted. Also
    encrypts what DuckDB spills to its temp directory."""
    con.execute(f"PRAGMA add_parquet_key({literal(PARQUET_KEY_NAME)}, "
                f"{literal(_parquet_key(secret))})")
    con.execute("SET temp_file_encryption = true")
    con.execute(f"SET VARIABLE {_CONFIGURED_VARIABLE} = true")


_CONFIGURED_VARIABLE = "personalization_parquet_key"


def copy_options(con: duckdb.DuckDBPyConnection) -> str:
    """Extra COPY options for a connection `configure` prepared (nothing when it was not):
    for writers that hold a connection but not the settings."""
    on = con.execute(f"SELECT getvariable('{_CONFIGURED_VARIABLE}')").fetchone()[0]
    return f", ENCRYPTION_CONFIG {{footer_key: '{PARQUET_KEY_NAME}'}}" if on else ""


def read_options(con: duckdb.DuckDBPyConnection) -> str:
    """Extra read_parquet arguments for files written with `copy_options(con)`."""
    on = con.execute(f"SELECT getvariable('{_CONFIGURED_VARIABLE}')").fetchone()[0]
    return (f", encryption_config = struct_pack(footer_key := '{PARQUET_KEY_NAME}')"
            if on else "")


def write_arrow(table, path, settings: Settings) -> None:
    """Write a pyarrow table to Parquet `path`: pyarrow when encryption is off, else DuckDB
    with the lake key (pyarrow's own encryption needs a KMS client; DuckDB's is the one
    every reader here uses)."""
    if not enabled(settings):
        import pyarrow.parquet as pq

        pq.write_table(table, path)
        return
    con = duckdb.connect()
    try:
        configure(con, settings)
        con.register("arrow_table", table)
        con.execute(f"COPY (SELECT * FROM arrow_table) TO {literal(str(path))} "
                    f"(FORMAT parquet, COMPRESSION zstd{parquet_write_options(settings)})")
    finally:
        con.close()


def parquet_write_options(settings: Settings) -> str:
    """Extra COPY options (`, ENCRYPTION_CONFIG {...}` or nothing); `configure` first."""
    return (f", ENCRYPTION_CONFIG {{footer_key: '{PARQUET_KEY_NAME}'}}"
            if enabled(settings) else "")


def parquet_read_options(settings: Settings) -> str:
    """Extra read_parquet arguments (`, encryption_config = ...` or nothing). Without
    braces, so it survives templates that `str.format` (dbt-duckdb's external_location)."""
    return (f", encryption_config = struct_pack(footer_key := '{PARQUET_KEY_NAME}')"
            if enabled(settings) else "")


def attach_options(settings: Settings, read_only: bool = True) -> str:
    """Options for `ATTACH '<warehouse>' AS x (...)`: READ_ONLY and the key when on."""
    options = ["READ_ONLY"] if read_only else []
    secret = key(settings)
    if secret is not None:
        options.append(f"ENCRYPTION_KEY {literal(secret)}")
    return f" ({', '.join(options)})" if options else ""


def warehouse_alias(settings: Settings) -> str:
    """The catalog name dbt gives the warehouse (its file name before the first dot), so
    views that name it keep working when a reader attaches the file."""
    return settings.warehouse_path.name.lstrip(".").split(".")[0]


def connect_warehouse(settings: Settings, read_only: bool = True,
                      config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the warehouse (encrypted or not).

    With encryption off this is `duckdb.connect(path)`; with it on, an in-memory connection
    that attaches the encrypted file with the key and `USE`s it. Either runs under the
    product's memory and thread limits (`Settings.duckdb_config`), updated with `config`.
    """
    config = {**settings.duckdb_config(), **(config or {})}
    if not enabled(settings):
        return duckdb.connect(str(settings.warehouse_path), read_only=read_only, config=config)
    con = duckdb.connect(config={"temp_directory": str(settings.warehouse_spill_dir), **config})
    try:
        configure(con, settings)
        alias = warehouse_alias(settings)
        con.execute(f"ATTACH {literal(settings.warehouse_path)} AS \"{alias}\""
                    f"{attach_options(settings, read_only)}")
        con.execute(f'USE "{alias}"')
    except BaseException:
        con.close()
        raise
    return con
