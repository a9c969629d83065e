"""CloudFormation's AWS::Batch::* resources in local mode, made by batchplane.

The emulator's CloudFormation would create them in moto's own Batch backend, which
batchplane never sees: a stack's job queue would not be in DescribeJobQueues. These
resource types replace moto's: CloudFormation calls batchplane's Batch operations, as
CloudFormation on AWS calls AWS Batch's, with the template's properties as the request
(CloudFormation spells them with a capital first letter) and the ARN as the resource's
Ref. Refusals are the Batch API's own ClientException messages.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import botocore.session
from moto.core.common_models import CloudFormationModel

from .. import arns, config, wiring

# Properties whose values are maps of the user's own keys, kept as they are.
_USER_MAPS = {"Parameters", "Tags", "Options", "Labels", "Annotations"}
# CloudFormation's own properties, not the API's.
_CFN_ONLY = {"ReplaceComputeEnvironment", "UpdatePolicy"}


def request(properties: dict[str, Any], operation: str | None = None) -> dict[str, Any]:
    """The Batch API request of ``operation`` for a resource's CloudFormation properties:
    each name with a lower-case first letter, at every level but inside the user's own
    maps, and each value of the type the operation's shape says (CloudFormation takes
    2 for "2" and "true" for true, as its resource schemas allow)."""
    body = {_api_name(k): v if k in _USER_MAPS else _converted(v)
            for k, v in properties.items() if k not in _CFN_ONLY}
    if operation is None:
        return body
    out = _coerced(body, _batch_model().operation_model(operation).input_shape)
    assert isinstance(out, dict)
    return out


@functools.cache
def _batch_model() -> Any:
    return botocore.session.get_session().get_service_model("batch")


def _coerced(value: Any, shape: Any) -> Any:
    """``value`` as ``shape``'s type where CloudFormation would convert it; the rest as is
    (the API's own checks refuse what is wrong)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _coerced(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_coerced(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _coerced(v, shape.value) for k, v in value.items()}
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind in ("integer", "long") and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if kind == "float" and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _converted(value: Any) -> Any:
    if isinstance(value, dict):
        return request(value)
    if isinstance(value, list):
        return [_converted(v) for v in value]
    return value


def _api_name(name: str) -> str:
    return name[:1].lower() + name[1:]


def _services() -> Any:
    return wiring.services()


def _check_region(region_name: str) -> None:
    here = config.settings().region
    if region_name != here:
        raise ValueError(f"this batchplane serves the region {here}: create the stack there, not in {region_name}")


class _BatchResource:
    """One resource a stack made; its Ref is its ARN. (Each type below also names
    CloudFormationModel as a direct base: moto lists only its direct subclasses.)"""

    def __init__(self, arn: str, name: str) -> None:
        self.arn = arn
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    attributes: tuple[str, ...] = ()

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name in self.attributes:
            return self.arn
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException  # noqa: PLC0415 - moto.cloudformation loads every moto backend: not on import of local mode

        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True


class ComputeEnvironment(_BatchResource, CloudFormationModel):
    attributes = ("ComputeEnvironmentArn",)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ComputeEnvironmentName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Batch::ComputeEnvironment"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> ComputeEnvironment:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        _check_region(region_name)
        body = {**request(cloudformation_json["Properties"], "CreateComputeEnvironment"),
                "computeEnvironmentName": resource_name}
        out = _services().compute_environments.create(body)
        return cls(out["computeEnvironmentArn"], out["computeEnvironmentName"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: ComputeEnvironment,
                                        new_resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> ComputeEnvironment:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        body = request(cloudformation_json["Properties"], "CreateComputeEnvironment")
        update: dict[str, Any] = {"computeEnvironment": original_resource.arn, **{
            k: body[k] for k in ("state", "serviceRole", "unmanagedvCpus") if k in body}}
        resources = body.get("computeResources") or {}
        scaling = {k: resources[k] for k in ("minvCpus", "maxvCpus", "desiredvCpus") if k in resources}
        if scaling:
            update["computeResources"] = scaling
        _services().compute_environments.update(update)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> None:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        name = arns.name_from(resource_name, "compute-environment")
        _services().compute_environments.update({"computeEnvironment": name, "state": "DISABLED"})
        _services().compute_environments.delete({"computeEnvironment": name})


class JobQueue(_BatchResource, CloudFormationModel):
    attributes = ("JobQueueArn",)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "JobQueueName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Batch::JobQueue"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> JobQueue:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        _check_region(region_name)
        body = {**request(cloudformation_json["Properties"], "CreateJobQueue"), "jobQueueName": resource_name}
        out = _services().job_queues.create(body)
        return cls(out["jobQueueArn"], out["jobQueueName"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: JobQueue,
                                        new_resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> JobQueue:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        body = request(cloudformation_json["Properties"], "CreateJobQueue")
        body.pop("jobQueueName", None)
        body.pop("tags", None)  # TagResource's, not UpdateJobQueue's
        _services().job_queues.update({**body, "jobQueue": original_resource.arn})
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> None:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        name = arns.name_from(resource_name, "job-queue")
        _services().job_queues.update({"jobQueue": name, "state": "DISABLED"})
        _services().job_queues.delete({"jobQueue": name})


class JobDefinition(_BatchResource, CloudFormationModel):
    @staticmethod
    def cloudformation_name_type() -> str:
        return "JobDefinitionName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Batch::JobDefinition"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> JobDefinition:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        _check_region(region_name)
        body = {**request(cloudformation_json["Properties"], "RegisterJobDefinition"),
                "jobDefinitionName": resource_name}
        out = _services().job_definitions.register(body)
        return cls(out["jobDefinitionArn"], out["jobDefinitionName"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: JobDefinition,
                                        new_resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> JobDefinition:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        # As on AWS: a change registers a new revision and deregisters the old one.
        body = {**request(cloudformation_json["Properties"], "RegisterJobDefinition"),
                "jobDefinitionName": original_resource.name}
        out = _services().job_definitions.register(body)
        _services().job_definitions.deregister({"jobDefinition": original_resource.arn})
        return cls(out["jobDefinitionArn"], out["jobDefinitionName"])

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> None:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        _services().job_definitions.deregister({"jobDefinition": resource_name})


class SchedulingPolicy(_BatchResource, CloudFormationModel):
    attributes = ("Arn",)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Batch::SchedulingPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> SchedulingPolicy:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        _check_region(region_name)
        body = {**request(cloudformation_json["Properties"], "CreateSchedulingPolicy"), "name": resource_name}
        out = _services().scheduling_policies.create(body)
        return cls(out["arn"], out["name"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: SchedulingPolicy,
                                        new_resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> SchedulingPolicy:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        body = request(cloudformation_json["Properties"], "CreateSchedulingPolicy")
        _services().scheduling_policies.update({"arn": original_resource.arn,
                                                "fairsharePolicy": body.get("fairsharePolicy") or {}})
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
                                        account_id: str, region_name: str) -> None:  # noqa: ARG003 - moto's CloudFormationModel signature (moto passes each)
        _services().scheduling_policies.delete({"arn": resource_name})


def install() -> None:
    """Make the emulator's CloudFormation use these for AWS::Batch::* (in its type map,
    built once and kept: moto's own Batch models are listed there too)."""
    from moto.cloudformation import parsing  # noqa: PLC0415 - moto.cloudformation loads every moto backend: not on import of local mode

    models, names = parsing.get_model_map(), parsing.get_name_type_map()
    for model in (ComputeEnvironment, JobQueue, JobDefinition, SchedulingPolicy):
        models[model.cloudformation_type()] = model
        names[model.cloudformation_type()] = model.cloudformation_name_type()
