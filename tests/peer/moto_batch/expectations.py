"""Which of moto's Batch tests are not run against batchplane, and which are expected to
fail because they assert what moto does and AWS Batch does not (docs/compatibility.md,
"moto's Batch tests", gives the AWS documentation for each)."""

# Tests of moto itself, not of the Batch API: skipped.
NOT_APPLICABLE: dict[str, str] = {}

# Tests asserting moto-only behaviour: strict xfail, so one that starts passing is noticed.
MOTO_ONLY: dict[str, str] = {}
