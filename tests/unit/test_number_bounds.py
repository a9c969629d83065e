"""Numbers a request may carry past what the code computes with (found by tests/fuzz).

JSON numbers have no bounds, and neither have the digits of a resourceRequirements value:
10**309 is past float's range (float() raises OverflowError, a 500), and "9" * 400 passes
as a plain decimal that float() makes inf (a job accepted with it broke every scheduling
round of its queue). Both are refused with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from batchplane.api import validation
from batchplane.domain import jobdefs
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

CONTAINER = {"image": "busybox", "command": ["true"],
             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}


def _register(**container: Any) -> dict[str, Any]:
    return {"jobDefinitionName": "jd", "type": "container", "containerProperties": {**CONTAINER, **container}}


@pytest.mark.parametrize(("operation", "body", "field"), [
    ("RegisterJobDefinition", _register(vcpus=10**309), "containerProperties.vcpus"),
    ("RegisterJobDefinition", _register(memory=-(10**309)), "containerProperties.memory"),
    ("SubmitJob", {"jobName": "j", "jobQueue": "q", "jobDefinition": "jd", "containerOverrides": {"vcpus": 2**31}},
     "containerOverrides.vcpus"),
    ("SubmitJob", {"jobName": "j", "jobQueue": "q", "jobDefinition": "jd",
                   "timeout": {"attemptDurationSeconds": 2**64}}, "timeout.attemptDurationSeconds"),
    ("CreateComputeEnvironment", {"computeEnvironmentName": "ce", "type": "MANAGED",
                                  "computeResources": {"type": "EC2", "maxvCpus": 10**40, "subnets": []}},
     "computeResources.maxvCpus"),
    ("CreateJobQueue", {"jobQueueName": "q", "priority": 1,
                        "computeEnvironmentOrder": [{"order": 2**31, "computeEnvironment": "ce"}]},
     "computeEnvironmentOrder[0].order"),
])
def test_an_integer_past_its_model_type_is_a_client_exception(operation: str, body: dict[str, Any],
                                                               field: str) -> None:
    with pytest.raises(ClientException) as e:
        validation.check(operation, body)
    assert f"{field} must be an integer from" in e.value.message, e.value.message
    assert len(e.value.message) < 200  # 309 digits are not echoed back


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_every_32_bit_integer_passes(n: int) -> None:
    validation.check("ListJobs", {"jobQueue": "q", "maxResults": n})


def test_a_64_bit_member_takes_past_32_bits() -> None:
    """Longs (a consumable resource's quantity) take up to 2**63 - 1."""
    validation.check("SubmitJob", {"jobName": "j", "jobQueue": "q", "jobDefinition": "jd",
                                   "consumableResourcePropertiesOverride": {"consumableResourceList": [
                                       {"consumableResource": "r", "quantity": 2**63 - 1}]}})
    with pytest.raises(ClientException, match=r"quantity must be an integer from .* \(a 64-bit integer\)"):
        validation.check("SubmitJob", {"jobName": "j", "jobQueue": "q", "jobDefinition": "jd",
                                       "consumableResourcePropertiesOverride": {"consumableResourceList": [
                                           {"consumableResource": "r", "quantity": 2**63}]}})


@pytest.mark.parametrize("kind", ["VCPU", "MEMORY", "GPU"])
@pytest.mark.parametrize("value", ["9" * 400, "1" + "0" * 309, str(2**31)])
def test_a_resource_requirement_past_the_largest_is_a_client_exception(kind: str, value: str) -> None:
    with pytest.raises(ClientException, match=f"resourceRequirements {kind} value must be at most 2147483647"):
        jobdefs.resource_requirements([{"type": kind, "value": value}], "resourceRequirements")


def test_the_largest_resource_requirement_is_taken() -> None:
    assert jobdefs.resource_requirements([{"type": "MEMORY", "value": str(2**31 - 1)}], "r") == [
        {"type": "MEMORY", "value": str(2**31 - 1)}]


@pytest.mark.parametrize("legacy", ["vcpus", "memory"])
def test_the_legacy_vcpus_and_memory_stop_at_the_largest_too(legacy: str) -> None:
    """The API's model refuses them past 32 bits; a trigger's or schedule's overrides do
    not pass through it, so the domain checks the same bound."""
    with pytest.raises(ClientException, match=f"containerOverrides.{legacy} must be between 1 and 2147483647"):
        jobdefs.container_overrides({legacy: 10**309}, "containerOverrides")
    with pytest.raises(ClientException, match=f"containerProperties.{legacy} must be between 1 and 2147483647"):
        jobdefs.container_properties({**CONTAINER, legacy: 2**31}, ["EC2"])
