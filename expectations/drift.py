"""Drift against the previous run: population stability index per feature."""

import great_expectations as gx
import great_expectations.expectations as gxe


def build_suite(name: str, psi_warn: float, psi_error: float) -> gx.ExpectationSuite:
    """Frame: one row per feature with its PSI versus the previous run."""
    return gx.ExpectationSuite(name=f"drift.{name}", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="psi", max_value=psi_warn, severity="warning"),
        gxe.ExpectColumnValuesToBeBetween(column="psi", max_value=psi_error),
    ])
