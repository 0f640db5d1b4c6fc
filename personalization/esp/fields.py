"""Export columns -> each ESP's field names: one deterministic, documented mapping per ESP.

Every adapter declares a `field_rule(column) -> name` (its reserved fields, its name rules)
and how names compare (`fold`: SendGrid compares field names case-insensitively). The
mapping is built at plan time, so a dry run refuses it too: two columns that would land in
the same ESP field, or a name the ESP would refuse, stop the sync with one line naming the
columns and the override that fixes it (`esp_field_names: {esp: {column: name}}`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from personalization.exceptions import SyncError

# Separates a segment's name from its own column in a segment-specific field name:
# `cart_abandoners` + `CART_SKUS` -> `CART_ABANDONERS__CART_SKUS`.
SEGMENT_SEPARATOR = "__"


def segment_field(segment: str, column: str) -> str:
    """The contact-level name of a segment-specific column (same value in no other segment)."""
    return f"{segment.upper()}{SEGMENT_SEPARATOR}{column.upper()}"


class FieldRuleError(ValueError):
    """A field rule cannot name a column (reserved, too long, bad characters)."""


@dataclass(frozen=True)
class FieldMap:
    """Which ESP field each column goes to; built once per sync, before any write."""

    esp: str
    targets: dict[str, str]  # column -> ESP field name

    def apply(self, fields: dict[str, str]) -> dict[str, str]:
        """A contact's columns renamed to the ESP's field names (unmapped columns dropped)."""
        return {self.targets[k]: v for k, v in fields.items() if k in self.targets}


def build_field_map(esp: str, columns: Iterable[str], rule: Callable[[str], str],
                    overrides: dict[str, str] | None = None,
                    fold: Callable[[str], str] = str,
                    check: Callable[[str], None] | None = None) -> FieldMap:
    """Map `columns` with `rule` (or an override), refusing collisions and invalid names.

    Args:
        esp: ESP name, for the messages.
        columns: export columns (contact-level and segment-prefixed).
        rule: the ESP's naming rule; raises `FieldRuleError` for a column it cannot name.
        overrides: `{column: field}` from `esp_field_names[esp]`; checked with `check`.
        fold: how the ESP compares names (`str.lower` where case does not count).
        check: validates an override; raises `FieldRuleError`.

    Raises:
        SyncError: one line naming the columns that collide or the name that is invalid.
    """
    overrides = overrides or {}
    targets: dict[str, str] = {}
    owner: dict[str, str] = {}
    for column in sorted(columns):
        try:
            if column in overrides:
                name = overrides[column]
                if check:
                    check(name)
            else:
                name = rule(column)
        except FieldRuleError as e:
            raise SyncError(f"{esp}: export column {column} cannot be mapped: {e}; set "
                            f"esp_field_names.{esp}.{column} to a valid field name") from None
        key = fold(name)
        if key in owner:
            raise SyncError(f"{esp}: export columns {owner[key]} and {column} would both be "
                            f"written to field {name!r}; set esp_field_names.{esp}.{column} "
                            "to another name") from None
        owner[key] = column
        targets[column] = name
    return FieldMap(esp, targets)
