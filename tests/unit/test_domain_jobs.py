"""Jobs: the state machine, Ref:: substitution, SubmitJob checks and merging, attempts and
retry evaluation, and the ListJobs summary."""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

import pytest
from batchplane.domain import jobdefs, jobs
from batchplane.domain.jobs import (
    FAILED,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    STATUSES,
    SUBMITTED,
    SUCCEEDED,
    TERMINAL,
    IllegalTransition,
)
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

QUEUE = {"jobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/q", "jobQueueName": "q"}
NOW = 1_700_000_000_000


def _rejects(call, *fields: str) -> str:
    """Assert ``call`` raises ClientException whose message names every one of ``fields``."""
    with pytest.raises(ClientException) as info:
        call()
    for field in fields:
        assert field in info.value.message, (field, info.value.message)
    return info.value.message


def definition(**fields: Any) -> dict[str, Any]:
    props = {
        "image": "busybox",
        "command": ["process", "Ref::input", "--codec=Ref::codec"],
        "environment": [{"name": "MODE", "value": "fast"}, {"name": "LEVEL", "value": "1"}],
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "2048"},
        ],
    }
    props.update(fields.pop("containerProperties", {}))
    body = {
        "jobDefinitionName": "jd",
        "type": "container",
        "parameters": {"input": "default.txt", "codec": "mp3"},
        "containerProperties": props,
        **fields,
    }
    return jobdefs.register(body, "arn:aws:batch:us-east-1:123456789012:job-definition/jd:1", 1)


def submit(request: dict[str, Any] | None = None, **def_fields: Any) -> dict[str, Any]:
    body = {"jobName": "job", "jobQueue": "q", "jobDefinition": "jd", **(request or {})}
    jobs.validate_submit(body)
    return jobs.new_job(
        body,
        job_id="job-1",
        job_arn="arn:aws:batch:us-east-1:123456789012:job/job-1",
        queue=QUEUE,
        definition=definition(**def_fields),
        now=NOW,
    )


def start(doc: dict[str, Any], *, attempt: int = 1, running: bool = True) -> dict[str, Any]:
    """Move a queued job into a started attempt, as the service does."""
    if doc["status"] == SUBMITTED:
        jobs.move(doc, RUNNABLE)
    jobs.move(doc, STARTING)
    doc["container"].update(
        taskArn=f"arn:aws:ecs:us-east-1:123456789012:task/c/t{attempt}",
        containerInstanceArn="arn:aws:ecs:us-east-1:123456789012:container-instance/c/i",
    )
    if running:
        jobs.move(doc, RUNNING)
        doc["startedAt"] = NOW + attempt * 1000
        doc["container"]["logStreamName"] = f"jd/default/t{attempt}"
    return doc


def fail(
    doc: dict[str, Any],
    exit_code: int | None = 1,
    reason: str | None = None,
    status_reason: str = jobs.ESSENTIAL_EXITED,
    retryable: bool = True,
) -> str:
    return jobs.finish_attempt(
        doc,
        exit_code=exit_code,
        reason=reason,
        status_reason=status_reason,
        now=NOW + 99_000,
        retryable=retryable,
    )


def with_retry(**strategy: Any) -> dict[str, Any]:
    return start(submit({"retryStrategy": strategy}))


# -- the state machine -----------------------------------------------------------------

# The legal moves, written from the Batch job lifecycle rather than copied from the code.
EXPECTED = {
    SUBMITTED: {PENDING, RUNNABLE, FAILED},
    PENDING: {RUNNABLE, SUCCEEDED, FAILED},  # SUCCEEDED: an array parent whose children all succeeded
    RUNNABLE: {STARTING, FAILED},
    STARTING: {RUNNING, RUNNABLE, SUCCEEDED, FAILED},  # RUNNABLE: the task failed to start
    RUNNING: {RUNNABLE, SUCCEEDED, FAILED},  # RUNNABLE: a failed attempt is retried
    SUCCEEDED: set(),
    FAILED: set(),
}


def test_every_status_has_a_row_and_terminal_rows_are_empty() -> None:
    assert set(jobs.TRANSITIONS) == set(STATUSES)
    assert {s for s, moves in jobs.TRANSITIONS.items() if not moves} == set(TERMINAL)
    assert set(jobs.QUEUED) == {SUBMITTED, PENDING, RUNNABLE}


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_move_allows_exactly_the_lifecycle(current: str, target: str) -> None:
    doc = {"jobId": "j", "status": current, "statusReason": "before"}
    if target in EXPECTED[current]:
        assert jobs.can_move(current, target)
        jobs.move(doc, target, "why")
        assert doc == {"jobId": "j", "status": target, "statusReason": "why"}
    else:
        assert not jobs.can_move(current, target)
        with pytest.raises(IllegalTransition) as info:
            jobs.move(doc, target, "why")
        assert doc == {"jobId": "j", "status": current, "statusReason": "before"}
        assert all(part in str(info.value) for part in ("j", current, target))


def test_move_without_a_reason_keeps_the_old_one() -> None:
    doc = {"jobId": "j", "status": RUNNABLE, "statusReason": "waiting"}
    jobs.move(doc, STARTING)
    assert doc["statusReason"] == "waiting"


def test_illegal_transition_is_not_a_client_error() -> None:
    # Callers treat it as a lost race; it must never reach the API as a 400.
    assert not issubclass(IllegalTransition, ClientException)


@given(st.lists(st.sampled_from(STATUSES), max_size=30))
def test_walks_follow_the_table_and_never_leave_a_terminal_state(targets: list[str]) -> None:
    doc = {"jobId": "j", "status": SUBMITTED}
    seen = [SUBMITTED]
    for target in targets:
        before = doc["status"]
        try:
            jobs.move(doc, target)
        except IllegalTransition:
            assert doc["status"] == before
            continue
        assert target in EXPECTED[before]
        seen.append(target)
    for i, status in enumerate(seen):
        if status in TERMINAL:
            assert seen[i:] == [status], "a terminal job moved again"
    assert SUBMITTED not in seen[1:]
    assert PENDING not in seen[2:], "PENDING is only entered straight from SUBMITTED"


# -- Ref:: substitution ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "params", "expected"),
    [
        (["cp", "Ref::src", "Ref::dst"], {"src": "a", "dst": "b"}, ["cp", "a", "b"]),
        (["--in=Ref::src"], {"src": "a"}, ["--in=a"]),
        (["Ref::a/Ref::b"], {"a": "x", "b": "y"}, ["x/y"]),
        (["Ref::missing", "Ref::src"], {"src": "a"}, ["Ref::missing", "a"]),
        (["Ref::in-file_2.txt"], {"in-file_2": "f"}, ["f.txt"]),
        (["Ref::a"], {"a": "Ref::b", "b": "no"}, ["Ref::b"]),  # one pass: values are not re-read
        (["Ref::"], {"": "x"}, ["Ref::"]),
        (["ref::a", "REF::a"], {"a": "x"}, ["ref::a", "REF::a"]),
        ([], {"a": "x"}, []),
    ],
)
def test_substitute(command: list[str], params: dict[str, str], expected: list[str]) -> None:
    assert jobs.substitute(command, params) == expected


@given(
    st.lists(st.text().filter(lambda s: "Ref::" not in s)),
    st.dictionaries(st.text(min_size=1), st.text()),
)
def test_substitute_is_identity_without_references(
    command: list[str], params: dict[str, str]
) -> None:
    assert jobs.substitute(command, params) == command


@given(st.lists(st.text()))
def test_substitute_with_no_parameters_keeps_everything(command: list[str]) -> None:
    assert jobs.substitute(command, {}) == command


@given(
    st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    st.text().filter(lambda s: "Ref::" not in s),
)
def test_a_known_reference_becomes_its_value(name: str, value: str) -> None:
    assert jobs.substitute([f"Ref::{name}"], {name: value}) == [value]


# -- SubmitJob checks ------------------------------------------------------------------


def base_submit(**fields: Any) -> dict[str, Any]:
    return {"jobName": "job", "jobQueue": "q", "jobDefinition": "jd", **fields}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (base_submit(jobName="-job"), ["jobName"]),
        (base_submit(jobName="j" * 129), ["jobName"]),
        (base_submit(jobName=None), ["jobName"]),
        (base_submit(jobQueue=""), ["jobQueue"]),
        (base_submit(jobQueue=None), ["jobQueue"]),
        (base_submit(jobDefinition=5), ["jobDefinition"]),
        (base_submit(parameters={"a": 1}), ["parameters"]),
        (base_submit(parameters="a=1"), ["parameters"]),
        (base_submit(schedulingPriorityOverride=10000), ["schedulingPriorityOverride"]),
        (base_submit(schedulingPriorityOverride=-1), ["schedulingPriorityOverride"]),
        (base_submit(containerOverrides=["cmd"]), ["containerOverrides"]),
        (base_submit(containerOverrides={"command": "echo"}), ["containerOverrides.command"]),
        (
            base_submit(
                containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]}
            ),
            ["containerOverrides.environment", "AWS_BATCH_JOB_ID"],
        ),
        (
            base_submit(
                containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": "0"}]}
            ),
            ["containerOverrides.resourceRequirements", "VCPU"],
        ),
        (base_submit(containerOverrides={"vcpus": 0}), ["containerOverrides.vcpus"]),
        (base_submit(containerOverrides={"memory": "1"}), ["containerOverrides.memory"]),
        (base_submit(retryStrategy={"attempts": 11}), ["retryStrategy.attempts"]),
        (base_submit(timeout={"attemptDurationSeconds": 30}), ["timeout.attemptDurationSeconds"]),
        (base_submit(tags={f"k{i}": "v" for i in range(51)}), ["tags"]),
        (base_submit(eksPropertiesOverride={"podProperties": {}}), ["eksPropertiesOverride"]),
        (base_submit(ecsPropertiesOverride={"taskProperties": []}), ["ecsPropertiesOverride"]),
    ],
)
def test_validate_submit_rejects(body: dict[str, Any], fields: list[str]) -> None:
    _rejects(lambda: jobs.validate_submit(body), *fields)


@pytest.mark.parametrize("priority", [0, 9999])
def test_validate_submit_accepts_priority_bounds(priority: int) -> None:
    jobs.validate_submit(base_submit(schedulingPriorityOverride=priority))


# -- new_job ---------------------------------------------------------------------------


def test_new_job_is_submitted_with_the_described_fields() -> None:
    doc = submit()
    assert doc["status"] == SUBMITTED
    assert (doc["jobId"], doc["jobName"]) == ("job-1", "job")
    assert doc["jobArn"].endswith("job/job-1")
    assert doc["jobQueue"] == QUEUE["jobQueueArn"]
    assert doc["jobDefinition"].endswith("job-definition/jd:1")
    assert doc["createdAt"] == NOW
    assert doc["attempts"] == []
    assert doc["dependsOn"] == []
    assert (doc["isCancelled"], doc["isTerminated"]) == (False, False)
    assert doc["platformCapabilities"] == ["EC2"]
    for absent in (
        "startedAt",
        "stoppedAt",
        "retryStrategy",
        "timeout",
        "shareIdentifier",
        "schedulingPriority",
    ):
        assert absent not in doc


def test_definition_parameters_are_defaults_that_submit_overrides() -> None:
    doc = submit({"parameters": {"input": "mine.txt", "extra": "x"}})
    assert doc["parameters"] == {"input": "mine.txt", "codec": "mp3", "extra": "x"}
    assert doc["container"]["command"] == ["process", "mine.txt", "--codec=mp3"]


def test_definition_defaults_fill_the_command() -> None:
    assert submit()["container"]["command"] == ["process", "default.txt", "--codec=mp3"]


def test_command_override_replaces_the_command_and_is_substituted() -> None:
    doc = submit({"containerOverrides": {"command": ["echo", "Ref::codec", "Ref::unknown"]}})
    assert doc["container"]["command"] == ["echo", "mp3", "Ref::unknown"]


def test_environment_override_merges_by_name() -> None:
    doc = submit(
        {
            "containerOverrides": {
                "environment": [
                    {"name": "LEVEL", "value": "9"},
                    {"name": "NEW", "value": "n"},
                ]
            }
        }
    )
    assert doc["container"]["environment"] == [
        {"name": "MODE", "value": "fast"},
        {"name": "LEVEL", "value": "9"},
        {"name": "NEW", "value": "n"},
    ]


def test_resource_requirements_override_merges_by_type() -> None:
    doc = submit(
        {
            "containerOverrides": {
                "resourceRequirements": [
                    {"type": "MEMORY", "value": "4096"},
                    {"type": "GPU", "value": "1"},
                ]
            }
        }
    )
    assert doc["container"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "1"},
        {"type": "MEMORY", "value": "4096"},
        {"type": "GPU", "value": "1"},
    ]
    assert jobdefs.requirements(doc["container"]) == {"VCPU": 1.0, "MEMORY": 4096.0, "GPU": 1.0}


def test_legacy_and_instance_type_overrides_are_copied() -> None:
    doc = submit({"containerOverrides": {"instanceType": "m5.large", "vcpus": 2, "memory": 1024}})
    assert (
        doc["container"]["instanceType"],
        doc["container"]["vcpus"],
        doc["container"]["memory"],
    ) == (
        "m5.large",
        2,
        1024,
    )


def test_legacy_vcpus_override_does_not_beat_a_vcpu_requirement() -> None:
    # AWS: the deprecated vcpus override "doesn't override any vCPU requirement specified in
    # the resourceRequirements structure in the job definition".
    doc = submit({"containerOverrides": {"vcpus": 8}})
    assert jobdefs.requirements(doc["container"])["VCPU"] == 1.0


def test_ec2_overrides_need_at_least_one_vcpu() -> None:
    body = {"resourceRequirements": [{"type": "VCPU", "value": "0.25"}]}
    _rejects(
        lambda: submit({"containerOverrides": body}),
        "containerOverrides.resourceRequirements",
        "EC2",
    )


def test_new_job_does_not_change_the_definition() -> None:
    jd = definition()
    before = copy.deepcopy(jd)
    doc = jobs.new_job(
        {
            "jobName": "j",
            "containerOverrides": {
                "environment": [{"name": "MODE", "value": "slow"}],
                "resourceRequirements": [{"type": "VCPU", "value": "2"}],
            },
        },
        job_id="x",
        job_arn="arn",
        queue=QUEUE,
        definition=jd,
        now=NOW,
    )
    doc["container"]["command"].append("more")
    assert jd == before


def test_retry_strategy_and_timeout_come_from_submit_then_definition() -> None:
    inherited = submit(retryStrategy={"attempts": 2}, timeout={"attemptDurationSeconds": 600})
    assert inherited["retryStrategy"] == {"attempts": 2}
    assert inherited["timeout"] == {"attemptDurationSeconds": 600}
    overridden = submit(
        {"retryStrategy": {"attempts": 5}, "timeout": {"attemptDurationSeconds": 60}},
        retryStrategy={"attempts": 2},
        timeout={"attemptDurationSeconds": 600},
    )
    assert overridden["retryStrategy"] == {"attempts": 5}
    assert overridden["timeout"] == {"attemptDurationSeconds": 60}


def test_scheduling_priority_override_wins_even_when_zero() -> None:
    assert submit(schedulingPriority=5)["schedulingPriority"] == 5
    assert (
        submit({"schedulingPriorityOverride": 0}, schedulingPriority=5)["schedulingPriority"] == 0
    )


def test_share_identifier_is_kept() -> None:
    assert submit({"shareIdentifier": "blue"})["shareIdentifier"] == "blue"


@pytest.mark.parametrize(
    ("submit_propagate", "definition_propagate", "propagates"),
    [
        (None, False, False),
        (None, True, True),
        (True, False, True),
        (True, True, True),
        (False, True, False),  # SubmitJob's explicit False replaces the definition's True
        (False, False, False),
    ],
)
def test_propagate_tags(
    submit_propagate: bool | None, definition_propagate: bool, propagates: bool
) -> None:
    request: dict[str, Any] = {"tags": {"team": "job", "own": "1"}}
    if submit_propagate is not None:
        request["propagateTags"] = submit_propagate
    doc = submit(request, propagateTags=definition_propagate, tags={"team": "def", "cost": "c"})
    assert doc["propagateTags"] is propagates
    expected = {"team": "job", "own": "1", **({"cost": "c"} if propagates else {})}
    assert doc["tags"] == expected


def test_a_job_needs_vcpu_and_memory_after_overrides() -> None:
    body = {
        "jobName": "j",
        "containerOverrides": {"resourceRequirements": [{"type": "MEMORY", "value": "3"}]},
    }
    _rejects(
        lambda: jobs.new_job(
            body, job_id="x", job_arn="a", queue=QUEUE, definition=definition(), now=NOW
        ),
        "VCPU",
        "MEMORY",
    )


def fargate_definition() -> dict[str, Any]:
    return definition(
        platformCapabilities=["FARGATE"],
        containerProperties={
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "2048"},
            ],
        },
    )


@pytest.mark.parametrize(
    ("overrides", "ok"),
    [
        ([{"type": "MEMORY", "value": "8192"}], True),
        ([{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "8192"}], True),
        ([{"type": "MEMORY", "value": "3000"}], False),
        ([{"type": "VCPU", "value": "4"}], False),  # 4 vCPU needs at least 8192 MiB
        ([{"type": "VCPU", "value": "3"}], False),
        ([{"type": "GPU", "value": "1"}], False),
    ],
)
def test_fargate_overrides_must_stay_a_fargate_size(
    overrides: list[dict[str, str]], ok: bool
) -> None:
    body = {"jobName": "j", "containerOverrides": {"resourceRequirements": overrides}}

    def call() -> dict[str, Any]:
        return jobs.new_job(
            body, job_id="x", job_arn="a", queue=QUEUE, definition=fargate_definition(), now=NOW
        )

    if ok:
        assert call()["platformCapabilities"] == ["FARGATE"]
    else:
        _rejects(call, "containerOverrides.resourceRequirements", "Fargate")


# -- finish_attempt and should_retry ---------------------------------------------------


def test_exit_zero_succeeds_and_records_the_attempt() -> None:
    doc = start(submit())
    assert fail(doc, exit_code=0) == SUCCEEDED
    assert doc["status"] == SUCCEEDED
    assert doc["stoppedAt"] == NOW + 99_000
    assert doc["statusReason"] == jobs.ESSENTIAL_EXITED
    assert doc["container"]["exitCode"] == 0
    assert doc["attempts"] == [
        {
            "container": {
                "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/t1",
                "exitCode": 0,
                "logStreamName": "jd/default/t1",
                "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c/i",
                "networkInterfaces": [],  # as AWS lists them for an EC2 job: none
            },
            "startedAt": NOW + 1000,
            "stoppedAt": NOW + 99_000,
            "statusReason": jobs.ESSENTIAL_EXITED,
        }
    ]


def test_a_failure_without_retry_strategy_fails_the_job() -> None:
    doc = start(submit())
    assert fail(doc, exit_code=2, reason="boom") == FAILED
    assert doc["stoppedAt"] == NOW + 99_000
    assert (doc["container"]["exitCode"], doc["container"]["reason"]) == (2, "boom")
    assert doc["attempts"][0]["container"]["reason"] == "boom"


def test_attempt_that_never_ran_has_no_empty_fields() -> None:
    doc = start(submit(), running=False)  # failed in STARTING: no log stream, no startedAt
    assert (
        fail(
            doc,
            exit_code=None,
            reason="CannotPullContainerError: nope",
            status_reason="Task failed to start",
        )
        == FAILED
    )
    attempt = doc["attempts"][0]
    assert set(attempt["container"]) == {"taskArn", "reason", "containerInstanceArn", "networkInterfaces"}
    assert attempt["startedAt"] == attempt["stoppedAt"] == NOW + 99_000
    assert attempt["statusReason"] == "Task failed to start"
    assert "exitCode" not in doc["container"]


def test_retries_go_back_to_runnable_with_a_clean_container() -> None:
    doc = with_retry(attempts=3)
    assert fail(doc) == RUNNABLE
    assert doc["status"] == RUNNABLE
    assert "startedAt" not in doc and "stoppedAt" not in doc
    for key in ("taskArn", "logStreamName", "exitCode", "reason", "containerInstanceArn"):
        assert key not in doc["container"]
    assert fail(start(doc, attempt=2)) == RUNNABLE
    assert fail(start(doc, attempt=3), exit_code=5) == FAILED
    assert [a["container"]["taskArn"][-2:] for a in doc["attempts"]] == ["t1", "t2", "t3"]
    assert [a["container"]["exitCode"] for a in doc["attempts"]] == [1, 1, 5]
    assert doc["container"]["exitCode"] == 5


def test_success_on_a_later_attempt() -> None:
    doc = with_retry(attempts=3)
    fail(doc)
    assert fail(start(doc, attempt=2), exit_code=0) == SUCCEEDED
    assert len(doc["attempts"]) == 2


@pytest.mark.parametrize("retryable", [True, False])
def test_finish_attempt_refuses_a_job_without_a_running_attempt_and_leaves_it_alone(
    retryable: bool,
) -> None:
    doc = submit()
    jobs.move(doc, RUNNABLE)
    before = copy.deepcopy(doc)
    with pytest.raises(IllegalTransition):
        fail(doc, retryable=retryable)
    assert doc == before


def test_not_retryable_never_retries() -> None:
    doc = with_retry(attempts=10, evaluateOnExit=[{"action": "RETRY", "onExitCode": "*"}])
    assert fail(doc, exit_code=137, status_reason=jobs.TIMEOUT_REASON, retryable=False) == FAILED
    assert doc["statusReason"] == jobs.TIMEOUT_REASON


def test_a_stopped_attempt_that_exits_zero_still_fails() -> None:
    # A process that handles SIGTERM on timeout and exits 0 did not succeed.
    doc = with_retry(attempts=3)
    assert fail(doc, exit_code=0, status_reason=jobs.TIMEOUT_REASON, retryable=False) == FAILED


def test_terminated_job_fails_even_with_exit_zero() -> None:
    doc = with_retry(attempts=3)
    doc["isTerminated"] = True
    assert fail(doc, exit_code=0, retryable=False) == FAILED


@pytest.mark.parametrize(
    ("rules", "exit_code", "reason", "status_reason", "retried"),
    [
        # First matching rule wins.
        (
            [{"action": "EXIT", "onExitCode": "1*"}, {"action": "RETRY", "onExitCode": "137"}],
            137,
            "",
            "",
            False,
        ),
        (
            [{"action": "RETRY", "onExitCode": "137"}, {"action": "EXIT", "onExitCode": "1*"}],
            137,
            "",
            "",
            True,
        ),
        (
            [{"action": "EXIT", "onExitCode": "1*"}, {"action": "RETRY", "onExitCode": "137"}],
            2,
            "",
            "",
            True,
        ),
        # No rule matches: retry.
        ([{"action": "EXIT", "onExitCode": "3"}], 1, "", "", True),
        ([{"action": "EXIT", "onExitCode": "1"}], 10, "", "", True),  # no wildcard: exact
        # Every given field must match.
        ([{"action": "EXIT", "onExitCode": "1", "onReason": "OutOfMemory*"}], 1, "Other", "", True),
        (
            [{"action": "EXIT", "onExitCode": "1", "onReason": "OutOfMemory*"}],
            1,
            "OutOfMemoryError: x",
            "",
            False,
        ),
        (
            [{"action": "EXIT", "onExitCode": "1", "onReason": "OutOfMemory*"}],
            2,
            "OutOfMemoryError: x",
            "",
            True,
        ),
        (
            [
                {"action": "RETRY", "onStatusReason": "Host EC2*"},
                {"action": "EXIT", "onExitCode": "*"},
            ],
            137,
            "",
            "Host EC2 (instance i-0abc) terminated.",
            True,
        ),
        (
            [
                {"action": "RETRY", "onStatusReason": "Host EC2*"},
                {"action": "EXIT", "onExitCode": "*"},
            ],
            137,
            "",
            jobs.ESSENTIAL_EXITED,
            False,
        ),
        ([{"action": "EXIT", "onReason": "*"}], 1, "", "", False),  # * also matches an empty reason
        (
            [{"action": "EXIT", "onReason": "Error"}],
            1,
            "error",
            "",
            True,
        ),  # case-sensitive patterns
        # Actions are case-insensitive.
        ([{"action": "exit", "onExitCode": "1"}], 1, "", "", False),
        ([{"action": "Exit", "onExitCode": "1"}], 1, "", "", False),
        (
            [{"action": "retry", "onExitCode": "1"}, {"action": "EXIT", "onExitCode": "*"}],
            1,
            "",
            "",
            True,
        ),
        # A missing exit code only matches "*".
        ([{"action": "EXIT", "onExitCode": "1*"}], None, "", "", True),
    ],
)
def test_evaluate_on_exit(
    rules: list[dict[str, str]],
    exit_code: int | None,
    reason: str,
    status_reason: str,
    retried: bool,
) -> None:
    doc = with_retry(attempts=3, evaluateOnExit=rules)
    status = fail(
        doc, exit_code=exit_code, reason=reason or None, status_reason=status_reason or "x"
    )
    assert status == (RUNNABLE if retried else FAILED)


def test_attempts_limit_beats_a_retry_rule() -> None:
    doc = with_retry(attempts=2, evaluateOnExit=[{"action": "RETRY", "onExitCode": "*"}])
    assert fail(doc) == RUNNABLE
    assert fail(start(doc, attempt=2)) == FAILED


def _reference_should_retry(
    attempts_made: int,
    allowed: int,
    rules: list[dict[str, str]],
    exit_code: int,
    reason: str,
    status_reason: str,
) -> bool:
    """AWS's documented rules, with fnmatch as an independent glob (patterns carry no
    other metacharacters than a trailing *)."""
    if attempts_made >= allowed:
        return False
    values = {"onExitCode": str(exit_code), "onReason": reason, "onStatusReason": status_reason}
    for rule in rules:
        if all(fnmatch.fnmatchcase(values[k], rule[k]) for k in values if k in rule):
            return rule["action"].upper() == "RETRY"
    return True


def _pattern(alphabet: str) -> st.SearchStrategy[str]:
    return st.tuples(st.text(alphabet=alphabet, max_size=2), st.booleans()).map(
        lambda t: t[0] + "*" * t[1]
    )


_rules = st.lists(
    st.fixed_dictionaries(
        {"action": st.sampled_from(["RETRY", "EXIT", "retry", "Exit"])},
        optional={
            "onExitCode": _pattern("01"),
            "onReason": _pattern("ab"),
            "onStatusReason": _pattern("ab"),
        },
    ).filter(lambda r: len(r) > 1),
    max_size=5,
)


@given(
    st.integers(1, 10),
    _rules,
    st.lists(
        st.tuples(
            st.sampled_from([1, 10, 11, 100, 101]),
            st.text("ab", max_size=2),
            st.text("ab", max_size=2),
        ),
        min_size=1,
        max_size=11,
    ),
)
def test_retry_decisions_match_the_documented_rules(
    allowed: int, rules: list[dict[str, str]], outcomes: list[tuple[int, str, str]]
) -> None:
    doc = (
        with_retry(attempts=allowed, evaluateOnExit=rules)
        if rules
        else with_retry(attempts=allowed)
    )
    for n, (exit_code, reason, status_reason) in enumerate(outcomes, start=1):
        expected = _reference_should_retry(n, allowed, rules, exit_code, reason, status_reason)
        status = fail(doc, exit_code=exit_code, reason=reason or None, status_reason=status_reason)
        assert status == (RUNNABLE if expected else FAILED)
        assert len(doc["attempts"]) == n <= allowed
        if status == FAILED:
            break
        start(doc, attempt=n + 1)
    else:
        # Every outcome was retried: that is only possible while attempts remain.
        assert len(outcomes) < allowed


@given(st.integers(1, 10), st.lists(st.integers(1, 255), min_size=10, max_size=10))
def test_without_rules_a_failing_job_runs_exactly_its_attempts(
    allowed: int, exit_codes: list[int]
) -> None:
    doc = with_retry(attempts=allowed)
    for n, code in enumerate(exit_codes, start=1):
        if fail(doc, exit_code=code) == FAILED:
            break
        start(doc, attempt=n + 1)
    assert len(doc["attempts"]) == allowed
    assert doc["status"] == FAILED


# -- summary ---------------------------------------------------------------------------


def test_summary_of_a_queued_job() -> None:
    doc = submit({"shareIdentifier": "blue"})
    assert jobs.summary(doc) == {
        "jobArn": doc["jobArn"],
        "jobId": "job-1",
        "jobName": "job",
        "createdAt": NOW,
        "status": SUBMITTED,
        "jobDefinition": doc["jobDefinition"],
        "shareIdentifier": "blue",
    }


def test_summary_of_a_finished_job() -> None:
    doc = start(submit())
    fail(doc, exit_code=3, reason="bad input")
    out = jobs.summary(doc)
    assert out["status"] == FAILED
    assert out["statusReason"] == jobs.ESSENTIAL_EXITED
    assert (out["startedAt"], out["stoppedAt"]) == (NOW + 1000, NOW + 99_000)
    assert out["container"] == {"exitCode": 3, "reason": "bad input"}
    assert "attempts" not in out and "parameters" not in out


def test_summary_shows_cancelled_and_terminated_only_when_true() -> None:
    doc = submit()
    assert "isCancelled" not in jobs.summary(doc) and "isTerminated" not in jobs.summary(doc)
    doc["isCancelled"] = True
    assert jobs.summary(doc)["isCancelled"] is True


def test_summary_array_properties_keep_size_and_index_only() -> None:
    doc = {**submit(), "arrayProperties": {"size": 3, "statusSummary": {"RUNNING": 3}, "index": 1}}
    assert jobs.summary(doc)["arrayProperties"] == {"size": 3, "index": 1}
