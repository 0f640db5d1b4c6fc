"""Change the encryption key of a home, or turn encryption on or off where data already is.

The key is not stored with the data, so every encrypted file is rewritten: the warehouse is
copied into a fresh file under the new key (`COPY FROM DATABASE`) and swapped in; each
Parquet file that encryption covers is read with the old key and written to a temp file with
the new one, then swapped in with `os.replace`. Run it while nothing else runs (pause the
DAG and the trigger runner). A file already under the new key is left alone, so a rerun after
an interruption finishes the job.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import duckdb

from personalization.config import Settings
from personalization.exceptions import ConfigError
from personalization.observability import StepReport, log_event, timed
from personalization.privacy import encryption, redact
from personalization.privacy.ledger import own_columns, relation_columns
from personalization.sql import literal

logger = logging.getLogger(__name__)

_OLD, _NEW = "personalization_rekey_old", "personalization_rekey_new"


def encrypted_parquet(settings: Settings) -> list[Path]:
    """The Parquet files encryption at rest covers (docs/privacy.md): lake raw, quarantine and
    load log, scores, the erasure ledger, the trigger runner's context snapshot."""
    files = [p for area in ("raw", "quarantine", "load_log")
             for p in (settings.lake_dir / area).rglob("*.parquet")]
    files += list(settings.scores_dir.rglob("*.parquet"))
    files += list((settings.home / "privacy").glob("*.parquet"))
    files += list(settings.triggers_state_dir.glob("context-*/*.parquet"))
    return sorted(files)


def rekey(old: Settings, new: Settings) -> StepReport:
    """Rewrite the home of `old` from `old`'s key (or none) to `new`'s key (or none).

    Raises:
        ConfigError: the homes differ, or a file opens with neither key.
    """
    if old.home != new.home:
        raise ConfigError(f"rekey rewrites one home in place; got {old.home} and {new.home}")
    old_key, new_key = encryption.key(old), encryption.key(new)
    with timed() as t:
        con = duckdb.connect(config=new.duckdb_config("rekey"))
        try:
            if new_key is not None:
                encryption.enable_writer(con, new)
            for name, secret in ((_OLD, old_key), (_NEW, new_key)):
                if secret is not None:
                    con.execute(f"PRAGMA add_parquet_key('{name}', "
                                f"{literal(encryption._parquet_key(secret))})")
            files = encrypted_parquet(old)
            rewritten = sum(_rekey_parquet(con, path, old_key, new_key) for path in files)
        finally:
            con.close()
        warehouse = _rekey_warehouse(new, old_key, new_key)
    log_event(logger, "rekey_done", parquet_files=len(files), parquet_rewritten=rewritten,
              warehouse_rewritten=warehouse, encrypted=new_key is not None, seconds=t["seconds"])
    return StepReport(step="rekey", ds="", rows_in=len(files), rows_out=rewritten,
                      seconds=t["seconds"],
                      details={"warehouse_rewritten": warehouse, "encrypted": new_key is not None})


def _options(secret: str | None, name: str, reading: bool) -> str:
    if secret is None:
        return ""
    return (f", encryption_config = struct_pack(footer_key := '{name}')" if reading
            else f", ENCRYPTION_CONFIG {{footer_key: '{name}'}}")


def _readable(con: duckdb.DuckDBPyConnection, path: Path, secret: str | None, name: str) -> bool:
    try:
        con.execute(f"SELECT count(*) FROM read_parquet({literal(str(path))}"
                    f"{_options(secret, name, True)})").fetchone()
        return True
    except duckdb.Error:
        return False


def _rekey_parquet(con: duckdb.DuckDBPyConnection, path: Path, old_key: str | None,
                   new_key: str | None) -> int:
    if old_key == new_key or _readable(con, path, new_key, _NEW):
        return 0  # nothing to change, or already under the new key (a rerun)
    if not _readable(con, path, old_key, _OLD):
        raise ConfigError(f"{path} opens with neither the old nor the new key")
    tmp = path.with_name(f".{path.name}.rekey-{uuid.uuid4().hex[:8]}")
    try:
        source = (f"read_parquet({literal(str(path))}, hive_partitioning = false"
                  f"{_options(old_key, _OLD, True)})")
        columns = own_columns(relation_columns(con, source), path)
        con.execute(f"COPY (SELECT {columns} FROM {source}) TO {literal(str(tmp))} "
                    f"(FORMAT parquet, COMPRESSION zstd{_options(new_key, _NEW, False)})")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return 1


def _attach(secret: str | None, read_only: bool) -> str:
    options = (["READ_ONLY"] if read_only else []) + (
        [f"ENCRYPTION_KEY {literal(secret)}"] if secret is not None else [])
    return f" ({', '.join(options)})" if options else ""


def _rekey_warehouse(settings: Settings, old_key: str | None, new_key: str | None) -> bool:
    path = settings.warehouse_path
    if not path.exists() or old_key == new_key:
        return False
    alias = encryption.warehouse_alias(settings)
    con = redact.copy_connection(settings)
    try:
        if new_key is not None:
            encryption.enable_writer(con, settings)
        try:
            con.execute(f'ATTACH {literal(str(path))} AS "{alias}"'
                        f"{_attach(old_key, True)}")
        except duckdb.Error:
            con.execute(f'ATTACH {literal(str(path))} AS "{alias}"'
                        f"{_attach(new_key, True)}")
            con.close()
            return False  # already under the new key (a rerun)
    except BaseException:
        con.close()
        raise
    redact.replace_with_copy(con, path, alias, _attach(new_key, False), "rekey")
    return True
