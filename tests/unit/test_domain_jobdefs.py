"""RegisterJobDefinition validation and the settings job definitions share with SubmitJob."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from batchplane.domain import jobdefs
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/jd:1"

# Fargate's VCPU -> MEMORY (MiB) table, written out from the AWS Batch documentation
# rather than copied from the code under test.
FARGATE = {
    "0.25": {512, 1024, 2048},
    "0.5": set(range(1024, 4096 + 1, 1024)),
    "1": set(range(2048, 8192 + 1, 1024)),
    "2": set(range(4096, 16384 + 1, 1024)),
    "4": set(range(8192, 30720 + 1, 1024)),
    "8": set(range(16384, 61440 + 1, 4096)),
    "16": set(range(32768, 122880 + 1, 8192)),
    "32": {61440, 122880, 249856},
}
FARGATE_PAIRS = sorted((v, m) for v, ms in FARGATE.items() for m in ms)


def _rejects(call, *fields: str) -> str:
    """Assert ``call`` raises ClientException whose message names every one of ``fields``."""
    with pytest.raises(ClientException) as info:
        call()
    for field in fields:
        assert field in info.value.message, (field, info.value.message)
    return info.value.message


def container(vcpu: str | None = "1", memory: str | None = "2048", **fields: Any) -> dict[str, Any]:
    reqs = [
        {"type": t, "value": v} for t, v in (("VCPU", vcpu), ("MEMORY", memory)) if v is not None
    ]
    return {"image": "busybox", "command": ["echo", "hi"], "resourceRequirements": reqs, **fields}


def request(props: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobDefinitionName": "jd",
        "type": "container",
        "containerProperties": props if props is not None else container(),
    }
    body.update(fields)
    return body


def register(body: dict[str, Any]) -> dict[str, Any]:
    return jobdefs.register(body, ARN, 1)


def fargate(vcpu: str | None, memory: str | None, **fields: Any) -> dict[str, Any]:
    return request(container(vcpu, memory, **fields), platformCapabilities=["FARGATE"])


# -- the described definition ----------------------------------------------------------


def test_minimal_container_definition() -> None:
    doc = register(request())
    assert doc["jobDefinitionName"] == "jd"
    assert doc["jobDefinitionArn"] == ARN
    assert (doc["revision"], doc["status"], doc["type"]) == (1, "ACTIVE", "container")
    # Described only when given, as AWS does (EC2 and no propagation by default).
    assert "platformCapabilities" not in doc
    assert "propagateTags" not in doc
    assert doc["parameters"] == {}
    assert doc["tags"] == {}
    assert doc["containerOrchestrationType"] == "ECS"
    props = doc["containerProperties"]
    assert props["command"] == ["echo", "hi"]
    assert props["environment"] == []
    for listed in ("volumes", "mountPoints", "ulimits", "secrets"):
        assert props[listed] == []
    assert "fargatePlatformConfiguration" not in props
    assert props["resourceRequirements"] == [
        {"type": "VCPU", "value": "1"},
        {"type": "MEMORY", "value": "2048"},
    ]
    for absent in ("retryStrategy", "timeout", "schedulingPriority"):
        assert absent not in doc


def test_revision_and_optional_settings_are_kept() -> None:
    body = request(
        parameters={"in": "a.txt"},
        tags={"team": "x"},
        propagateTags=True,
        schedulingPriority=7,
        retryStrategy={"attempts": 3},
        timeout={"attemptDurationSeconds": 60},
    )
    doc = jobdefs.register(body, ARN, 4)
    assert doc["revision"] == 4
    assert doc["parameters"] == {"in": "a.txt"}
    assert doc["tags"] == {"team": "x"}
    assert doc["propagateTags"] is True
    assert doc["schedulingPriority"] == 7
    assert doc["retryStrategy"] == {"attempts": 3}
    assert doc["timeout"] == {"attemptDurationSeconds": 60}


def test_register_does_not_share_state_with_the_request() -> None:
    body = request()
    before = copy.deepcopy(body)
    doc = register(body)
    doc["containerProperties"]["command"].append("x")
    doc["containerProperties"]["resourceRequirements"].append({"type": "GPU", "value": "1"})
    assert body == before


def test_legacy_vcpus_and_memory_still_work() -> None:
    doc = register(request({"image": "busybox", "vcpus": 2, "memory": 512}))
    assert jobdefs.requirements(doc["containerProperties"]) == {
        "VCPU": 2.0,
        "MEMORY": 512.0,
        "GPU": 0.0,
    }


def test_resource_requirements_supersede_legacy_fields() -> None:
    props = {**container("4", "8192"), "vcpus": 1, "memory": 128}
    assert jobdefs.requirements(register(request(props))["containerProperties"]) == {
        "VCPU": 4.0,
        "MEMORY": 8192.0,
        "GPU": 0.0,
    }


def test_gpu_on_ec2() -> None:
    props = container("2", "1024")
    props["resourceRequirements"].append({"type": "GPU", "value": "2"})
    need = jobdefs.requirements(register(request(props))["containerProperties"])
    assert need == {"VCPU": 2.0, "MEMORY": 1024.0, "GPU": 2.0}


@pytest.mark.parametrize("vcpu", ["0.0001", "0.25", "0.5", "0.999"])
def test_ec2_needs_at_least_one_vcpu(vcpu: str) -> None:
    # AWS: "For Amazon EC2 resources, you must specify at least one vCPU." Below that the
    # scheduler's milli-vCPU accounting could round a job to no capacity at all.
    _rejects(lambda: register(request(container(vcpu, "1024"))), "VCPU", "EC2", "at least 1")
    both = request(container(vcpu, "1024"), platformCapabilities=["EC2", "FARGATE"])
    _rejects(lambda: register(both), "VCPU")


# -- request-level mistakes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (request(jobDefinitionName="bad.name"), ["jobDefinitionName"]),
        (request(jobDefinitionName="x" * 129), ["jobDefinitionName"]),
        (request(jobDefinitionName=None), ["jobDefinitionName"]),
        (request(type="docker"), ["type", "container", "multinode"]),
        (request(type=None), ["type"]),
        (request(platformCapabilities=["EKS"]), ["platformCapabilities"]),
        (request(platformCapabilities="FARGATE"), ["platformCapabilities"]),
        (request(eksProperties={"podProperties": {}}), ["eksProperties"]),
        (request(ecsProperties={"taskProperties": []}), ["ecsProperties"]),
        (request(parameters={"n": 1}), ["parameters"]),
        (request(parameters=["a"]), ["parameters"]),
        (request(tags={f"k{i}": "v" for i in range(51)}), ["tags", "50"]),
        (request(schedulingPriority=-1), ["schedulingPriority"]),
        (request(schedulingPriority=10000), ["schedulingPriority"]),
        (request(schedulingPriority="1"), ["schedulingPriority"]),
        (request(timeout={"attemptDurationSeconds": 59}), ["timeout.attemptDurationSeconds", "60"]),
        (request(timeout={"attemptDurationSeconds": "60"}), ["timeout.attemptDurationSeconds"]),
        (request(timeout=60), ["timeout"]),
        (request(retryStrategy=3), ["retryStrategy"]),
    ],
)
def test_register_rejects(body: dict[str, Any], fields: list[str]) -> None:
    _rejects(lambda: register(body), *fields)


@pytest.mark.parametrize("priority", [0, 9999])
def test_scheduling_priority_bounds_are_inclusive(priority: int) -> None:
    assert register(request(schedulingPriority=priority))["schedulingPriority"] == priority


def test_fifty_tags_are_fine() -> None:
    assert len(register(request(tags={f"k{i}": "v" for i in range(50)}))["tags"]) == 50


def test_timeout_without_duration_is_empty() -> None:
    assert jobdefs.timeout({}) == {}
    assert jobdefs.timeout(None) is None


@given(st.integers(-10, 10**7))
def test_timeout_at_least_sixty_seconds(seconds: int) -> None:
    if seconds >= 60:
        assert jobdefs.timeout({"attemptDurationSeconds": seconds}) == {
            "attemptDurationSeconds": seconds
        }
    else:
        _rejects(
            lambda: jobdefs.timeout({"attemptDurationSeconds": seconds}), "attemptDurationSeconds"
        )


# -- containerProperties ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "fields"),
    [
        (None, ["containerProperties"]),
        ("busybox", ["containerProperties"]),
        (
            {"resourceRequirements": container()["resourceRequirements"]},
            ["containerProperties.image"],
        ),
        (container(image=""), ["containerProperties.image"]),
        (container(command="echo hi"), ["containerProperties.command"]),
        (container(command=["echo", 1]), ["containerProperties.command"]),
        (container(vcpu=None), ["VCPU", "containerProperties"]),
        (container(memory=None), ["MEMORY", "containerProperties"]),
        (container(memory="3"), ["MEMORY", "4 MiB"]),
        (container(vcpus=0), ["containerProperties.vcpus"]),
        ({"image": "busybox", "vcpus": 1, "memory": "512"}, ["containerProperties.memory"]),
        (
            container(resourceRequirements={"VCPU": "1"}),
            ["containerProperties.resourceRequirements"],
        ),
    ],
)
def test_container_properties_mistakes(props: object, fields: list[str]) -> None:
    _rejects(lambda: register({**request(), "containerProperties": props}), *fields)


@pytest.mark.parametrize(
    ("reqs", "fields"),
    [
        ([{"type": "CPU", "value": "1"}], ["resourceRequirements.type", "VCPU, MEMORY, GPU"]),
        ([{"value": "1"}], ["resourceRequirements.type"]),
        (["VCPU=1"], ["resourceRequirements.type"]),
        ([{"type": "VCPU", "value": "1"}, {"type": "VCPU", "value": "2"}], ["VCPU twice"]),
        ([{"type": "VCPU", "value": 1}], ["VCPU value"]),
        ([{"type": "VCPU", "value": None}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "0"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "-1"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "one"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "nan"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "inf"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "1_0"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": " 1"}], ["VCPU value"]),
        ([{"type": "VCPU", "value": "1e3"}], ["VCPU value"]),
        ([{"type": "MEMORY", "value": "1.5"}], ["MEMORY value"]),
        ([{"type": "MEMORY", "value": "0"}], ["MEMORY value"]),
        ([{"type": "MEMORY", "value": "2048\n"}], ["MEMORY value"]),
        ([{"type": "MEMORY", "value": "\u0663\u0660\u0660\u0660"}], ["MEMORY value"]),
        ([{"type": "GPU", "value": "0"}], ["GPU value"]),
        ([{"type": "GPU", "value": "0.5"}], ["GPU value"]),
    ],
)
def test_resource_requirement_values(reqs: list[Any], fields: list[str]) -> None:
    _rejects(
        lambda: jobdefs.resource_requirements(reqs, "containerProperties.resourceRequirements"),
        "containerProperties.resourceRequirements",
        *fields,
    )


@given(st.integers(1, 10**6), st.integers(0, 999))
def test_any_positive_decimal_vcpu_is_accepted(whole: int, millis: int) -> None:
    value = f"{whole}.{millis:03d}"
    assert jobdefs.resource_requirements([{"type": "VCPU", "value": value}], "r") == [
        {"type": "VCPU", "value": value}
    ]


@pytest.mark.parametrize(
    "name", ["AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT", "AWS_BATCH", "AWS_BATCHX"]
)
def test_reserved_environment_names(name: str) -> None:
    props = container(environment=[{"name": name, "value": "x"}])
    _rejects(lambda: register(request(props)), "containerProperties.environment", name, "AWS_BATCH")


@pytest.mark.parametrize("name", ["AWS_REGION", "MY_AWS_BATCH", "aws_batch_lower", "BATCH"])
def test_other_environment_names_are_fine(name: str) -> None:
    props = container(environment=[{"name": name, "value": "x"}])
    assert register(request(props))["containerProperties"]["environment"] == [
        {"name": name, "value": "x"}
    ]


@pytest.mark.parametrize("env", ["A=1", [{"value": "1"}], [{"name": 3, "value": "1"}], ["A"]])
def test_environment_shape(env: object) -> None:
    _rejects(
        lambda: register(request(container(environment=env))), "containerProperties.environment"
    )


# -- Fargate ---------------------------------------------------------------------------


@pytest.mark.parametrize(("vcpu", "memory"), FARGATE_PAIRS)
def test_every_documented_fargate_pair_is_accepted(vcpu: str, memory: int) -> None:
    doc = register(fargate(vcpu, str(memory)))
    assert doc["platformCapabilities"] == ["FARGATE"]
    assert doc["containerProperties"]["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}


@given(st.sampled_from(sorted(FARGATE)), st.integers(4, 130_000))
def test_fargate_memory_accepted_exactly_when_documented(vcpu: str, memory: int) -> None:
    body = fargate(vcpu, str(memory))
    if memory in FARGATE[vcpu]:
        register(body)
    else:
        _rejects(lambda: register(body), "MEMORY", str(memory), vcpu)


@pytest.mark.parametrize("vcpu", ["0.125", "3", "64", "1.0", "0.50"])
def test_fargate_vcpu_must_be_one_of_the_fixed_sizes(vcpu: str) -> None:
    _rejects(lambda: register(fargate(vcpu, "2048")), "VCPU", "0.25", "32")


def test_fargate_needs_resource_requirements_not_legacy_vcpus() -> None:
    body = request(
        {"image": "busybox", "vcpus": 1, "memory": 2048}, platformCapabilities=["FARGATE"]
    )
    _rejects(lambda: register(body), "VCPU", "Fargate")


def test_fargate_cannot_have_gpus() -> None:
    body = fargate("1", "2048")
    body["containerProperties"]["resourceRequirements"].append({"type": "GPU", "value": "1"})
    _rejects(lambda: register(body), "GPU", "Fargate")


def test_ec2_has_no_fargate_table() -> None:
    assert (
        register(request(container("3", "5000")))["containerProperties"]["resourceRequirements"][0][
            "value"
        ]
        == "3"
    )


# -- multinode -------------------------------------------------------------------------


def test_multinode_keeps_node_properties() -> None:
    nodes = {
        "numNodes": 2,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:1", "container": container()}],
    }
    doc = register({"jobDefinitionName": "mnp", "type": "multinode", "nodeProperties": nodes})
    # Kept as given; domain.nodes.node_properties checks the ranges (tests/unit/test_domain_nodes.py).
    assert doc["nodeProperties"] == nodes
    assert doc["nodeProperties"] is not nodes
    assert "containerProperties" not in doc


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"jobDefinitionName": "mnp", "type": "multinode"}, ["nodeProperties"]),
        (
            {
                "jobDefinitionName": "mnp",
                "type": "multinode",
                "nodeProperties": {"numNodes": 2},
                "platformCapabilities": ["FARGATE"],
            },
            ["platformCapabilities", "FARGATE"],
        ),
    ],
)
def test_multinode_mistakes(body: dict[str, Any], fields: list[str]) -> None:
    _rejects(lambda: register(body), *fields)


# -- retryStrategy ---------------------------------------------------------------------


def rule(action: str = "EXIT", **conditions: str) -> dict[str, str]:
    return {"action": action, **(conditions or {"onExitCode": "1"})}


@pytest.mark.parametrize("attempts", [1, 2, 10])
def test_attempts_in_range(attempts: int) -> None:
    assert jobdefs.retry_strategy({"attempts": attempts}) == {"attempts": attempts}


@pytest.mark.parametrize("attempts", [0, 11, -1, "3", 2.0, True, None])
def test_attempts_out_of_range(attempts: object) -> None:
    _rejects(lambda: jobdefs.retry_strategy({"attempts": attempts}), "retryStrategy.attempts")


def test_empty_retry_strategy() -> None:
    assert jobdefs.retry_strategy(None) is None
    assert jobdefs.retry_strategy({}) == {}
    assert jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": []}) == {"attempts": 2}


def test_five_rules_allowed_six_not() -> None:
    five = {"attempts": 3, "evaluateOnExit": [rule(onExitCode=str(i)) for i in range(5)]}
    assert len(jobdefs.retry_strategy(five)["evaluateOnExit"]) == 5
    six = {"attempts": 3, "evaluateOnExit": [rule(onExitCode=str(i)) for i in range(6)]}
    _rejects(lambda: jobdefs.retry_strategy(six), "evaluateOnExit", "5")


def test_rules_need_attempts() -> None:
    # AWS: "If this parameter [evaluateOnExit] is specified, then the attempts parameter
    # must also be specified."
    _rejects(
        lambda: jobdefs.retry_strategy({"evaluateOnExit": [rule()]}),
        "retryStrategy.attempts",
        "evaluateOnExit",
    )


@pytest.mark.parametrize("action", ["RETRY", "EXIT", "retry", "exit", "Retry", "eXiT"])
def test_actions_are_case_insensitive_and_kept_lowercase(action: str) -> None:
    # AWS describes the action lowercase whatever the case it was given in (Terraform's
    # provider lowercases it in its state for that reason).
    out = jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": [rule(action)]})
    assert out["evaluateOnExit"] == [{"action": action.lower(), "onExitCode": "1"}]


@pytest.mark.parametrize("action", ["IGNORE", "", None, 1, "RETRY "])
def test_unknown_actions(action: object) -> None:
    _rejects(
        lambda: jobdefs.retry_strategy(
            {"attempts": 2, "evaluateOnExit": [{"action": action, "onExitCode": "1"}]}
        ),
        "action",
        "RETRY",
        "EXIT",
    )


def test_rule_needs_a_condition_and_must_be_an_object() -> None:
    _rejects(
        lambda: jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": [{"action": "EXIT"}]}),
        "onExitCode",
        "onReason",
        "onStatusReason",
    )
    _rejects(
        lambda: jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": ["EXIT"]}),
        "evaluateOnExit",
    )
    _rejects(
        lambda: jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": "EXIT"}), "evaluateOnExit"
    )


@pytest.mark.parametrize("pattern", ["0", "1", "137", "1*", "*", "0" * 512])
def test_exit_code_patterns_accepted(pattern: str) -> None:
    out = jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": [rule(onExitCode=pattern)]})
    assert out["evaluateOnExit"][0]["onExitCode"] == pattern


@pytest.mark.parametrize(
    "pattern", ["-1", "1*2", "*1", "**", "abc", "1 ", "1\n", "1.0", "0" * 513, 1]
)
def test_exit_code_patterns_are_digits_with_a_trailing_star(pattern: object) -> None:
    _rejects(
        lambda: jobdefs.retry_strategy(
            {"attempts": 2, "evaluateOnExit": [rule(onExitCode=pattern)]}
        ),
        "onExitCode",
    )


@pytest.mark.parametrize("key", ["onReason", "onStatusReason"])
@pytest.mark.parametrize(
    "pattern",
    [
        "CannotPullContainerError*",
        "Host EC2*",
        "Essential container in task exited",
        "Out\tof memory",
        "a:b.c",
        "*",
        "x" * 512,
    ],
)
def test_reason_patterns_accepted(key: str, pattern: str) -> None:
    out = jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": [rule(**{key: pattern})]})
    assert out["evaluateOnExit"][0][key] == pattern


@pytest.mark.parametrize("key", ["onReason", "onStatusReason"])
@pytest.mark.parametrize(
    "pattern", ["*Error", "Host*EC2", "a**", "semi;colon", "quote'", "line\n", "x" * 513, None]
)
def test_reason_patterns_allow_only_a_trailing_star(key: str, pattern: object) -> None:
    _rejects(
        lambda: jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": [rule(**{key: pattern})]}),
        key,
    )


def test_unknown_rule_keys_are_dropped() -> None:
    out = jobdefs.retry_strategy(
        {"attempts": 2, "evaluateOnExit": [{**rule(), "onSomething": "x"}]}
    )
    assert out["evaluateOnExit"] == [rule("exit")]


@given(st.text(alphabet="0123456789", max_size=20), st.booleans())
def test_any_digit_pattern_with_optional_trailing_star_is_valid(digits: str, star: bool) -> None:
    pattern = digits + ("*" if star else "")
    jobdefs.retry_strategy({"attempts": 2, "evaluateOnExit": [rule(onExitCode=pattern)]})
