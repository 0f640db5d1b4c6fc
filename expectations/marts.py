"""Public marts: identity_map, customer_profiles, customer_rfm, and cross-table reconciliation."""

import great_expectations as gx
import great_expectations.expectations as gxe

LIFECYCLE_STAGES = ["prospect", "new", "active", "at_risk", "lapsed"]
RFM_SEGMENTS = ["champions", "loyal", "potential_loyalist", "new_customers", "promising",
                "need_attention", "about_to_sleep", "at_risk", "cant_lose", "hibernating", "lost"]
IDENTITY_SOURCES = ["crm", "shop", "pixel", "guest"]


def identity_map_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="marts.identity_map", expectations=[
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["source", "source_id"]),
        gxe.ExpectColumnValuesToNotBeNull(column="unified_id"),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=IDENTITY_SOURCES),
        gxe.ExpectColumnValuesToBeBetween(column="match_score", min_value=0, max_value=1),
    ])


def customer_profiles_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="marts.customer_profiles", expectations=[
        gxe.ExpectColumnValuesToBeUnique(column="unified_id"),
        gxe.ExpectColumnValuesToBeInSet(column="lifecycle_stage", value_set=LIFECYCLE_STAGES),
        gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0),
        # Privacy rules, checked on derived flags computed in SQL (frames.py).
        gxe.ExpectColumnValuesToBeInSet(column="contactable_without_valid_email", value_set=[False]),
        gxe.ExpectColumnValuesToBeInSet(column="erased_but_has_personal_data", value_set=[False]),
        gxe.ExpectColumnValuesToBeInSet(column="email_matches_erasure_request", value_set=[False]),
        gxe.ExpectColumnValuesToBeInSet(column="contactable_without_consent", value_set=[False]),
    ])


def customer_rfm_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="marts.customer_rfm", expectations=[
        gxe.ExpectColumnValuesToBeUnique(column="unified_id"),
        *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=1, max_value=5)
          for c in ("recency_score", "frequency_score", "monetary_score")],
        gxe.ExpectColumnValuesToBeInSet(column="rfm_segment", value_set=RFM_SEGMENTS),
        gxe.ExpectColumnValuesToBeBetween(column="recency_days", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="frequency", min_value=1),
    ])


def reconciliation_suite(min_profile_ratio: float, max_profile_ratio: float) -> gx.ExpectationSuite:
    """One-row frame of warehouse-wide totals."""
    return gx.ExpectationSuite(name="marts.reconciliation", expectations=[
        # Revenue on profiles must add up to revenue on placed orders (cents of rounding).
        gxe.ExpectColumnValuesToBeBetween(column="revenue_difference", min_value=-0.01, max_value=0.01),
        # Profiles per distinct source person: too low = over-merging, too high = no matching.
        gxe.ExpectColumnValuesToBeBetween(column="profiles_per_known_record",
                                          min_value=min_profile_ratio, max_value=max_profile_ratio),
        gxe.ExpectColumnValuesToBeInSet(column="orders_without_person", value_set=[0]),
    ])


def customer_scores_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name="marts.customer_scores", expectations=[
        gxe.ExpectColumnValuesToBeUnique(column="unified_id"),
        gxe.ExpectColumnValuesToBeBetween(column="p_vip", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="p_churn", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="best_send_hour", min_value=0, max_value=23),
        gxe.ExpectColumnValuesToBeInSet(column="in_profiles", value_set=[True]),
    ])
