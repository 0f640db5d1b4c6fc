"""Great Expectations suites, as code: one module per family of datasets.

Each `build_suite(...)` returns an `ExpectationSuite` whose expectations read as the spec.
Keys and relationships are tested in dbt; these suites check volumes, drift and the business
rules on what leaves the warehouse. Severity `critical` stops the run; `warning` is kept."""
