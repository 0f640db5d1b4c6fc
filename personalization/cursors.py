"""Work on one DuckDB database from two threads, each on its own cursor."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import duckdb

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_on_cursors(con: duckdb.DuckDBPyConnection, items: Iterable[Item],
                   one: Callable[[duckdb.DuckDBPyConnection, Item], Result],
                   workers: int = 2) -> list[Result]:
    """`one(cursor, item)` for every item, results in the items' order, `workers` at a time.

    Many small statements (a file per segment: its rows, a Parquet file, CSV lists) keep
    one core busy each; two side by side use both. Each worker's cursor keeps its temp
    tables and views to itself. After an error no other item starts, and it is raised.
    """
    items = list(items)
    workers = max(1, min(workers, len(items)))
    cursors = [con.cursor() for _ in range(workers)]  # made here: `con` is not thread-safe
    free: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for cursor in cursors:
        free.put(cursor)

    def run(item: Item) -> Result:
        cursor = free.get()
        try:
            return one(cursor, item)
        finally:
            free.put(cursor)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cursor")
    try:
        return list(pool.map(run, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for cursor in cursors:
            cursor.close()
