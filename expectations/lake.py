"""Lake inputs: what extract loaded for one `ds` partition."""

import great_expectations as gx
import great_expectations.expectations as gxe

# Columns that identify a row, and which ones hold emails, per lake table.
KEYS = {
    "crm/contacts": ["contact_id"],
    "crm/erasure_requests": ["email"],
    "shop/customers": ["customer_id"],
    "shop/products": ["sku"],
    "shop/orders": ["order_id"],
    "shop/order_items": ["order_id", "line_number"],
    "pixel/events": ["event_id"],
}
EMAIL_COLUMNS = {"crm/contacts": "email", "shop/customers": "email", "crm/erasure_requests": "email"}


def build_suite(table: str, rows_loaded: int, skew_seconds: int,
                volume_bounds: tuple[int, int] | None) -> gx.ExpectationSuite:
    """Suite for one lake table's partition.

    Args:
        table: `<source>/<table>`.
        rows_loaded: what the load log says extract wrote (must equal the Parquet row count).
        skew_seconds: allowed clock skew past the end of `ds`.
        volume_bounds: (min, max) rows expected from the previous delivery, or None.
    """
    expectations = [
        gxe.ExpectTableRowCountToEqual(value=rows_loaded),
        *[gxe.ExpectColumnValuesToNotBeNull(column=k) for k in KEYS[table]],
        # Timestamps after the end of ds (plus skew) must have been quarantined at the door.
        gxe.ExpectColumnValuesToBeBetween(column="seconds_after_ds_end", max_value=skew_seconds),
    ]
    if table == "shop/products":
        expectations.append(gxe.ExpectColumnValuesToBeUnique(column="sku"))
    if table == "shop/order_items":
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=KEYS[table]))
    if table in EMAIL_COLUMNS:
        # The product's one email rule, evaluated in SQL (personalization/privacy/emails.py).
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="is_valid_email",
                                                            value_set=[True]))
    if volume_bounds is not None:
        # A broken tracker or a half delivery shows up as a volume drop: warn, don't stop.
        expectations.append(gxe.ExpectTableRowCountToBeBetween(
            min_value=volume_bounds[0], max_value=volume_bounds[1], severity="warning"))
    return gx.ExpectationSuite(name=f"lake.{table.replace('/', '.')}", expectations=expectations)
