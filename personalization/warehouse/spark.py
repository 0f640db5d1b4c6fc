"""The Spark side of `PERSONALIZATION_ENGINE=spark` (docs/scale_out.md).

dbt-spark's `session` method runs SQL on `SparkSession.builder.getOrCreate()` in this
process, so the session made here (master, warehouse directory, metastore, UTC, the few
functions Spark lacks) is the one dbt uses. Spark builds the tables; `serve` then copies the
public tables into the DuckDB warehouse file, which every later step (quality gate, scoring,
export, erasure, portal) reads unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from personalization.config import Settings
from personalization.exceptions import WarehouseError
from personalization.observability import log_event

logger = logging.getLogger(__name__)

_SESSION: Any = None


def session(settings: Settings) -> Any:
    """The process's Spark session, configured from the settings (made once per process).

    Raises:
        WarehouseError: pyspark is not installed (`pip install '.[spark]'`) or no Java.
    """
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise WarehouseError("PERSONALIZATION_ENGINE=spark needs pyspark and dbt-spark: "
                             "pip install '.[spark]' (and a Java 17 runtime)") from e
    if shutil.which("java") is None:
        raise WarehouseError("PERSONALIZATION_ENGINE=spark needs a Java 17 runtime on PATH "
                             "(Debian: apt-get install openjdk-17-jre-headless)")
    # Python workers (the similarity functions) run this interpreter unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    home = settings.home
    metastore = home / "spark_metastore"
    home.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName("personalization")
        .config("spark.sql.warehouse.dir", str(settings.spark_warehouse_dir))
        # An embedded Derby metastore under the home: tables outlive the process, so the
        # marts built by one step are there for the segments step (a cluster points this
        # at its Hive metastore or Unity/Glue catalog instead).
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore};create=true")
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
        .config("spark.sql.session.timeZone", "UTC")
        # Timestamps without a zone, as in DuckDB and in the lake's Parquet.
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.ui.enabled", "false")
        # Local mode talks to itself only; a cluster deployment sets its own driver host.
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        # DuckDB's semantics for the project's SQL: a bad cast or x/0 gives null, not an error.
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.parquet.mergeSchema", "true")
        # Identity's EM unrolls its iterations into one query: deep plans need more passes.
        .config("spark.sql.analyzer.maxIterations", "1000")
        .config("spark.sql.optimizer.maxIterations", "1000")
        # String literals as DuckDB reads them: a backslash is a backslash ('\s+' is a regex).
        .config("spark.sql.parser.escapedStringLiterals", "true")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "true")
        .enableHiveSupport()
    )
    for name, value in settings.spark_conf.items():
        if name == "spark.driver.extraJavaOptions":  # added to, not instead of, the metastore's
            value = f"-Dderby.system.home={home} {value}"
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    register_functions(spark)
    _SESSION = spark
    log_event(logger, "spark_session", master=settings.spark_master,
              warehouse=str(settings.spark_warehouse_dir), version=spark.version)
    return spark


def register_functions(spark: Any) -> None:
    """Session functions for what Spark SQL lacks: the string similarities identity uses.

    Same names and results as DuckDB's (jellyfish implements the same definitions), so the
    identity SQL stays one text. Vectorised through Arrow; on a cluster the executors need
    jellyfish installed (it is a dependency of this package).
    """
    import jellyfish
    from pyspark.sql.functions import udf

    def jaro_winkler_similarity(a, b):
        return None if a is None or b is None else jellyfish.jaro_winkler_similarity(a, b)

    def damerau_levenshtein(a, b):
        return None if a is None or b is None else jellyfish.damerau_levenshtein_distance(a, b)

    jaro_winkler_similarity = udf(jaro_winkler_similarity, "double", useArrow=True)
    damerau_levenshtein = udf(damerau_levenshtein, "bigint", useArrow=True)
    spark.udf.register("jaro_winkler_similarity", jaro_winkler_similarity)
    spark.udf.register("damerau_levenshtein", damerau_levenshtein)
    spark.udf.register("duckdb_hash_bucket", _duckdb_hash_bucket_udf())


def _duckdb_hash_bucket_udf() -> Any:
    """`duckdb_hash_bucket(x, n)`: DuckDB's `hash(x) % n`, computed by DuckDB on each Arrow
    batch (vectorised). Identity's u sample puts records into slots by this hash
    (identity_hash_bucket); Spark's own hash is another function, so it would sample other
    pairs and learn slightly other u than DuckDB. Needs the same duckdb version on the
    executors as on the DuckDB side (it is a dependency of this package)."""
    import duckdb
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def duckdb_hash_bucket(values, buckets):
        frame = pd.DataFrame({"v": values.astype("string"), "b": buckets.astype("int64")})
        con = duckdb.connect()
        try:
            con.register("frame", frame)
            out = con.execute("select cast(hash(v) % cast(b as ubigint) as bigint) as bucket "
                              "from frame").df()["bucket"]
        finally:
            con.close()
        return out.astype("int64")

    # Series in, Series out (set here: this module's annotations are strings).
    duckdb_hash_bucket.__annotations__ = {"values": pd.Series, "buckets": pd.Series,
                                          "return": pd.Series}
    return pandas_udf(duckdb_hash_bucket, "bigint")


def lake_tables(settings: Settings) -> list[str]:
    """`source/table` names that have at least one Parquet file in the lake (dbt var)."""
    raw = Path(settings.lake_dir) / "raw"
    found = []
    for table_dir in sorted(raw.glob("*/*")):
        if any(table_dir.glob("*/*.parquet")):
            found.append(f"{table_dir.parent.name}/{table_dir.name}")
    return found


def serve(result: Any, settings: Settings) -> dict[str, int]:
    """Copy the tables a dbt run built on Spark into the DuckDB warehouse file.

    Every later step reads the warehouse file; this keeps them engine-agnostic. Files are
    read straight from the tables' Parquet (no round trip through the driver); an empty
    table, which Spark may leave without any file, is made from its schema.

    Returns:
        {table: rows copied}.
    """
    import duckdb

    spark = session(settings)
    copied: dict[str, int] = {}
    names = []
    for r in getattr(result, "results", None) or []:
        node = r.node
        if node.resource_type not in ("model", "seed") or str(r.status) not in ("success", "pass"):
            continue
        if node.resource_type == "model" and node.config.materialized not in ("table", "incremental"):
            continue
        names.append(node.alias or node.name)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("set TimeZone = 'UTC'")
        for name in names:
            table = spark.table(f"{settings.spark_schema}.{name}")
            files = [_duckdb_path(f) for f in table.inputFiles()]
            if files:
                con.execute(f"create or replace table main.{name} as "
                            "select * from read_parquet(?, union_by_name = true, hive_partitioning = true)",
                            [files])
            else:
                empty = table.limit(0).toArrow()  # noqa: F841 - read by DuckDB by name
                con.execute(f"create or replace table main.{name} as select * from empty")
            copied[name] = con.execute(f"select count(*) from main.{name}").fetchone()[0]
    # Connected components' passes (identity_connected_components.sql) are scratch tables
    # holding record keys; the models that made them have read them, so none stays.
    for row in spark.sql(f"show tables in {settings.spark_schema} like 'cc_*'").collect():
        spark.sql(f"drop table if exists {settings.spark_schema}.{row.tableName}")
    log_event(logger, "spark_served", tables=len(copied), rows=sum(copied.values()),
              warehouse=str(settings.warehouse_path))
    return copied


def _duckdb_path(uri: str) -> str:
    """A file URI as Spark gives it, as DuckDB reads it (file:/x -> /x, s3a:// -> s3://)."""
    if uri.startswith("file:"):
        return "/" + uri[len("file:"):].lstrip("/")
    if uri.startswith("s3a://"):
        return "s3://" + uri[len("s3a://"):]
    return uri


def newest_deliveries(settings: Settings, tables: tuple[str, ...]) -> dict[str, Any]:
    """The newest `delivered_on` of each of these incremental Spark tables that exists."""
    spark = session(settings)
    schema = settings.spark_schema
    if not spark.catalog.databaseExists(schema):
        return {}
    present = {t.name for t in spark.catalog.listTables(schema)}
    return {table: spark.sql(f"select max(delivered_on) from {schema}.{table}").first()[0]
            for table in tables if table in present}


def erase(con: Any, settings: Settings, keys: str) -> list[dict]:
    """Rewrite the Spark tables' Parquet files without the rows of erased persons.

    Part of the erase step (personalization.privacy.erasure), with any engine setting: a
    home that ever built on Spark keeps those tables until the next Spark build. Rows are
    matched like every other copy (privacy.matching on the columns that identify a person,
    `keys` a ledger-shaped relation on `con`); each file is replaced atomically and its
    Hadoop checksum sidecar (`.<file>.crc`, which would no longer match) removed. Partition
    columns stay in the folder names (read with hive_partitioning off). A session of this
    process re-reads the changed tables' file lists. Needs no Spark: plain Parquet through
    DuckDB. A warehouse on object storage (`s3a://`) is not reachable here: there use Delta
    tables and `DELETE`, or rebuild them from the redacted lake (docs/scale_out.md).

    Returns:
        One `{"path", "rows_removed"}` per file changed (paths relative to the home).
    """
    from personalization.privacy import redact

    root = settings.spark_warehouse_dir
    if root is None or "://" in str(root) or not Path(root).is_dir():
        return []
    root = Path(root)
    # Spark's own temporary and hidden files (a part starting with "." or "_") are skipped.
    files = [path for path in sorted(root.rglob("*.parquet"))
             if not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)]
    changed = redact.parquet_files(con, settings, files, keys, foreign=True)
    tables: set[str] = set()
    for path in (settings.home / c["path"] for c in changed):
        path.with_name(f".{path.name}.crc").unlink(missing_ok=True)
        parts = path.relative_to(root).parts
        if len(parts) >= 3 and parts[0].endswith(".db"):
            tables.add(f"{parts[0][:-3]}.{parts[1]}")
    if _SESSION is not None:
        for table in sorted(tables):
            _SESSION.catalog.refreshTable(table)
    return changed
