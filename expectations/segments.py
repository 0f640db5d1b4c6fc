"""Generic suite applied to every segment model (picked up from dbt's manifest)."""

import great_expectations as gx
import great_expectations.expectations as gxe


def build_suite(segment: str, warn_bounds: tuple[int, int] | None,
                error_bounds: tuple[int, int] | None) -> gx.ExpectationSuite:
    """Unique members that exist in customer_profiles, and a size close to the previous run's.

    Args:
        segment: model name.
        warn_bounds / error_bounds: (min, max) sizes derived from the previous run, or None on
            the first run.
    """
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="unified_id"),
        gxe.ExpectColumnValuesToBeUnique(column="unified_id"),
        gxe.ExpectColumnValuesToBeInSet(column="in_profiles", value_set=[True]),
    ]
    if warn_bounds:
        expectations.append(gxe.ExpectTableRowCountToBeBetween(
            min_value=warn_bounds[0], max_value=warn_bounds[1], severity="warning"))
    if error_bounds:
        expectations.append(gxe.ExpectTableRowCountToBeBetween(
            min_value=error_bounds[0], max_value=error_bounds[1]))
    return gx.ExpectationSuite(name=f"segment.{segment}", expectations=expectations)
