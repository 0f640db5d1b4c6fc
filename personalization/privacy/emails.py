"""The one definition of a valid email address, for Python and for SQL.

The rule itself lives in `dbt_project.yml` (vars `valid_email_pattern` and
`reserved_email_tlds`) so that the dbt macro `is_valid_email` and this module read the same
text: extract (the door), staging, the export's consent filter and the quality gate all
decide validity with it. It follows RFC 5321/5322 as `email-validator` applies them without
a DNS lookup (tests compare the two on hard cases):

- a dot-atom local part (letters, digits, ``!#$%&'*+-/=?^_`{|}~``, non-ASCII letters; no
  leading, trailing or double dots), at most 64 characters; no quoted local parts;
- a domain of at least two labels of letters, digits and inner hyphens (non-ASCII allowed),
  each at most 63 characters, ending in a letter, not a special-use name (`.local`, `.test`,
  ...); no IP literals;
- at most 254 characters in all; surrounding spaces are trimmed first.

Hashing (`email_sha256`) uses the trimmed, lower-cased address, as the pixel and the
suppression list do.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

from personalization.config import REPO_ROOT, dbt_var

MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 64


@cache
def _rule() -> tuple[str, tuple[str, ...]]:
    return dbt_var(REPO_ROOT, "valid_email_pattern"), tuple(dbt_var(REPO_ROOT, "reserved_email_tlds"))


def email_pattern() -> str:
    """The regular expression (RE2 and Python `re` read it the same way), unanchored."""
    return _rule()[0]


def reserved_tlds() -> tuple[str, ...]:
    return _rule()[1]


@cache
def _compiled() -> re.Pattern[str]:
    return re.compile(email_pattern())


def is_valid_email(value: str | None) -> bool:
    """True when `value` (surrounding spaces trimmed) is a valid address under the rule."""
    if value is None:
        return False
    email = value.strip(" ")  # SQL trim() removes spaces only: the same here
    if len(email) > MAX_LENGTH or not _compiled().fullmatch(email):
        return False
    local, _, domain = email.rpartition("@")
    return len(local) <= MAX_LOCAL_LENGTH and domain.rsplit(".", 1)[-1].lower() not in reserved_tlds()


def valid_email_sql(expr: str) -> str:
    """DuckDB SQL, true/false (never null), for "`expr` is a valid email": the same
    expression the dbt macro `is_valid_email` renders."""
    email = f"trim({expr})"
    tlds = ", ".join(f"'{t}'" for t in reserved_tlds())
    return (f"coalesce(regexp_full_match({email}, '{email_pattern()}') "
            f"AND length({email}) <= {MAX_LENGTH} "
            f"AND length(split_part({email}, '@', 1)) <= {MAX_LOCAL_LENGTH} "
            f"AND lower(regexp_extract({email}, '[^.]*$')) NOT IN ({tlds}), false)")


def email_sha256(email: str) -> str:
    """sha256 hex of the trimmed, lower-cased address: the hash every part of the product uses."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def email_sha256_sql(expr: str) -> str:
    """The same hash in DuckDB SQL."""
    return f"sha256(lower(trim({expr})))"
