"""What leaves: every exported contact is consented, valid, not erased, not suppressed."""

import great_expectations as gx
import great_expectations.expectations as gxe


def build_suite(segment: str) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name=f"export.{segment}", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="email"),
        # The product's one email rule, evaluated in SQL by the gate's frame.
        gxe.ExpectColumnValuesToBeInSet(column="is_valid_email", value_set=[True]),
        gxe.ExpectColumnValuesToBeUnique(column="unified_id"),
        gxe.ExpectColumnValuesToBeInSet(column="is_contactable", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="is_erased", value_set=[False]),
        gxe.ExpectColumnValuesToBeInSet(column="is_suppressed", value_set=[False]),
    ])
