"""ESP credentials: `PERSONALIZATION_<ESP>_*` env vars, else the Airflow connection.

The key lives in a field excluded from `repr`, so it cannot leak through a log of the
object; nothing in this package logs it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from personalization.exceptions import SyncError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """API key plus the optional list id and base URL override of one ESP."""

    api_key: str = field(repr=False)
    list_id: str | None = None
    base_url: str | None = None


def _airflow_connection(conn_id: str) -> Credentials | None:
    """The Airflow connection `conn_id`, or None if Airflow is absent or has none."""
    try:
        from airflow.sdk import BaseHook
    except Exception:  # noqa: BLE001 - Airflow is optional here
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - "not defined" is the common case
        return None
    if not conn.password:
        return None
    extra = conn.extra_dejson or {}
    base_url = extra.get("base_url") or (conn.host if conn.host and "://" in conn.host else None)
    return Credentials(conn.password, extra.get("list_id"), base_url)


def resolve_credentials(esp: str, *, need_list_id: bool = False) -> Credentials:
    """Credentials for `esp` from the environment or Airflow.

    Raises:
        SyncError: one line naming the env var and connection to set.
    """
    prefix = f"PERSONALIZATION_{esp.upper()}_"
    key = os.environ.get(prefix + "API_KEY")
    creds = (Credentials(key, os.environ.get(prefix + "LIST_ID"),
                         os.environ.get(prefix + "BASE_URL")) if key
             else _airflow_connection(f"personalization_{esp}"))
    if creds is None:
        raise SyncError(f"no {esp} credentials: set {prefix}API_KEY or the Airflow connection "
                        f"'personalization_{esp}'")
    if need_list_id and not creds.list_id:
        raise SyncError(f"no {esp} list id: set {prefix}LIST_ID or extra.list_id on the Airflow "
                        f"connection 'personalization_{esp}'")
    return creds
