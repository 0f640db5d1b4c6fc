"""dbt-duckdb plugin of the `duckdb_encrypted` profile target (docs/privacy.md).

dbt-duckdb calls `configure_connection` on its fresh connection before it runs the profile's
`attach:` list. Here the warehouse file is attached with its key (and the lake's Parquet key
registered), so dbt's own `ATTACH IF NOT EXISTS` of the same alias is a no-op. The key comes
from the environment `dbt_environment` sets for one dbt call and is never part of the
profile, so `dbt debug` and dbt's logs (which print the profile's connection keys) never
show it.
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from personalization.exceptions import ConfigError
from personalization.privacy import encryption
from personalization.sql import literal


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        secret = os.environ.get("PERSONALIZATION_ENCRYPTION_KEY")
        path = os.environ.get("PERSONALIZATION_WAREHOUSE_PATH")
        alias = os.environ.get("PERSONALIZATION_WAREHOUSE_ALIAS")
        if not secret or not path or not alias:
            raise ConfigError("the duckdb_encrypted dbt target needs PERSONALIZATION_ENCRYPTION_KEY, "
                              "_WAREHOUSE_PATH and _WAREHOUSE_ALIAS (set by dbt_environment)")
        allow_mbedtls = os.environ.get("PERSONALIZATION_ENCRYPTION_ALLOW_MBEDTLS") == "true"
        encryption.enable_writer_with(conn, allow_mbedtls)
        encryption.register_parquet_key(conn, secret)
        conn.execute(f"ATTACH IF NOT EXISTS {literal(path)} AS \"{alias}\" "
                     f"(ENCRYPTION_KEY {literal(secret)})")

    def configure_cursor(self, cursor) -> None:
        # Unqualified names (hooks, `run_query` in macros) resolve in the warehouse, as
        # they do when the warehouse file is dbt's main database.
        cursor.execute(f'USE "{os.environ["PERSONALIZATION_WAREHOUSE_ALIAS"]}"')
