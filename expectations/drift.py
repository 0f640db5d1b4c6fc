"""Drift against the previous run: population stability index per feature."""

import great_expectations as gx
import great_expectations.expectations as gxe


def build_suite(name: str, psi_warn: float, psi_error: float) -> gx.ExpectationSuite:
    """Frame: one row per feature with its PSI versus the previous run, and that PSI where it
    is beyond sampling noise (`psi_significant`, else 0), which the thresholds judge."""
    return gx.ExpectationSuite(name=f"drift.{name}", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="psi_significant", max_value=psi_warn,
                                          severity="warning"),
        gxe.ExpectColumnValuesToBeBetween(column="psi_significant", max_value=psi_error),
    ])
