"""A representative subset of the e2e suite, run again on ``--store dynamodb``: plain
jobs, retries, cancel and terminate, an array with an aggregate, a failing dependency,
preemption, racing schedulers, SubmitJob retries and the newest-first
filtered listing (a merge of the status partitions read backwards)."""

from tests.e2e.test_arrays import (
    test_a_failed_dependency_fails_its_dependents_and_theirs,
    test_array_with_an_aggregate_that_waits_for_every_child,
)
from tests.e2e.test_engine import (
    test_failing_job_runs_every_attempt_with_its_number,
    test_preempting_queue_requeues_lower_priority_work,
    test_two_schedulers_racing_dispatch_each_attempt_once,
)
from tests.e2e.test_jobs import (
    test_cancel_leaves_running_job_and_terminate_stops_it,
    test_cancel_runnable_job_fails_it,
    test_exit_code_3_fails,
    test_submit_by_name_revision_and_arn,
)
from tests.e2e.test_listing_order import (
    held,
    test_filtered_listings_are_newest_first_across_statuses,
    test_filtered_paging_is_stable_while_jobs_are_submitted,
)
from tests.e2e.test_submit_retry import test_same_invocation_id_same_job

__all__ = [
    "held",
    "test_a_failed_dependency_fails_its_dependents_and_theirs",
    "test_array_with_an_aggregate_that_waits_for_every_child",
    "test_cancel_leaves_running_job_and_terminate_stops_it",
    "test_cancel_runnable_job_fails_it",
    "test_exit_code_3_fails",
    "test_failing_job_runs_every_attempt_with_its_number",
    "test_filtered_listings_are_newest_first_across_statuses",
    "test_filtered_paging_is_stable_while_jobs_are_submitted",
    "test_preempting_queue_requeues_lower_priority_work",
    "test_same_invocation_id_same_job",
    "test_submit_by_name_revision_and_arn",
    "test_two_schedulers_racing_dispatch_each_attempt_once",
]
