"""EC2 capacity for MANAGED EC2 and SPOT compute environments: one launch template and one
Auto Scaling group per environment, both named ``batchplane-<environment>-<uuid8>``.

- Launch template: the ECS-optimized Amazon Linux 2023 AMI (GPU variant when the plan has
  GPU types) from its public SSM parameter, unless the environment names an image
  (``imageId``, or ``ec2Configuration`` with ``imageIdOverride`` / ``imageType``); the
  instance profile ``instanceRole``; user data that joins the environment's ECS cluster;
  IMDSv2 only. A changed template becomes a new version; the group launches ``$Latest``.
- Auto Scaling group: a mixed instances policy listing the plan's types, each weighted by
  its vCPUs, so MinSize / MaxSize / DesiredCapacity are minvCpus / maxvCpus /
  desiredvCpus. On-Demand types are taken in the plan's order ("prioritized"); SPOT
  environments buy Spot only, with the plan's Spot allocation strategy. Subnets come from
  ``computeResources.subnets``.
- Scale-in never stops a job: new instances are protected from scale-in, and protection
  is lifted only from instances that run no ECS task when the group shrinks (what ECS
  managed termination protection does for capacity providers).
- Everything carries the tags ``batchplane:compute-environment`` (the environment's ARN,
  which the IAM policy keys on) and ``batchplane:owner`` (the table, so that ``sweep``
  only removes what this deployment made).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .. import aws
from ..config import settings
from ..ports import CapacityError

if TYPE_CHECKING:
    from ..domain.capacity import Plan

log = logging.getLogger(__name__)

ENVIRONMENT_TAG = "batchplane:compute-environment"
OWNER_TAG = "batchplane:owner"
AMI_PARAMETER = "/aws/service/ecs/optimized-ami/{}/recommended/image_id"
# ec2Configuration imageType -> the path of its ECS-optimized AMI parameter
IMAGE_TYPES = {
    "ECS_AL2023": "amazon-linux-2023",
    "ECS_AL2023_NVIDIA": "amazon-linux-2023/gpu",
    "ECS_AL2": "amazon-linux-2",
    "ECS_AL2_NVIDIA": "amazon-linux-2/gpu",
}
AMI_TTL_SECONDS = 3600  # the parameter changes when AWS publishes a new AMI
# Error codes that mean the environment's settings are wrong (unknown subnet, security
# group, AMI, key pair, instance profile...), not that the call failed.
_CLIENT_CODES = ("ValidationError", "ParameterNotFound", "MissingParameter")
_LT_NOT_FOUND = ("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound")


def group_name(ce: dict[str, Any]) -> str:
    """The launch template's and Auto Scaling group's name (<= 128 characters, unique per
    environment even when a name is reused)."""
    return f"batchplane-{ce['computeEnvironmentName'][:100]}-{ce['uuid'][:8]}"


def _client_error(e: ClientError) -> bool:
    code = e.response.get("Error", {}).get("Code", "")
    return code in _CLIENT_CODES or code.startswith("Invalid")


class AutoScalingCapacity:
    """The CapacityController of deployed batchplane."""

    def __init__(
        self,
        ec2: Any | None = None,
        autoscaling: Any | None = None,
        ssm: Any | None = None,
        ecs: Any | None = None,
    ) -> None:
        self._clients = {"ec2": ec2, "autoscaling": autoscaling, "ssm": ssm, "ecs": ecs}
        self._amis: dict[str, tuple[float, str]] = {}

    def _client(self, name: str) -> Any:
        if self._clients[name] is None:  # created on first use: most functions never provision
            self._clients[name] = aws.client(name)
        return self._clients[name]

    # -- the port -----------------------------------------------------------------------

    def apply(self, ce: dict[str, Any], plan: Plan) -> None:
        """Make the environment's launch template and group match ``plan``."""
        if not plan.instance_types:
            return
        name = group_name(ce)
        try:
            self._launch_template(name, ce, plan)
            self._group(name, ce, plan)
        except ClientError as e:
            if _client_error(e):
                message = e.response["Error"].get("Message") or str(e)
                raise CapacityError(f"CLIENT_ERROR - {message}") from e
            raise

    def remove(self, ce: dict[str, Any]) -> None:
        """Delete the group (terminating its instances) and the launch template."""
        self._remove(group_name(ce))

    def _remove(self, name: str) -> None:
        asg, ec2 = self._client("autoscaling"), self._client("ec2")
        if asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]:
            try:
                asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
            except ClientError as e:
                if "not found" not in str(e):  # deleted meanwhile
                    raise
        try:
            ec2.describe_launch_templates(LaunchTemplateNames=[name])
            ec2.delete_launch_template(LaunchTemplateName=name)
        except ClientError as e:
            if e.response["Error"]["Code"] not in _LT_NOT_FOUND:
                raise

    def sweep(self, live: set[str]) -> list[str]:
        """Delete groups and launch templates of this deployment whose compute environment
        (ARN) is not in ``live``: the environment was deleted and its stream record lost."""
        owner = [{"Name": f"tag:{OWNER_TAG}", "Values": [settings().table_name]}]
        orphans: dict[str, str] = {}
        pages = self._client("autoscaling").get_paginator("describe_auto_scaling_groups")
        for page in pages.paginate(Filters=owner):
            for g in page["AutoScalingGroups"]:
                arn = _tags(g.get("Tags")).get(ENVIRONMENT_TAG)
                if arn and arn not in live:
                    orphans[g["AutoScalingGroupName"]] = arn
        pages = self._client("ec2").get_paginator("describe_launch_templates")
        for page in pages.paginate(Filters=owner):
            for t in page["LaunchTemplates"]:
                arn = _tags(t.get("Tags")).get(ENVIRONMENT_TAG)
                if arn and arn not in live:
                    orphans[t["LaunchTemplateName"]] = arn
        for name, arn in orphans.items():
            log.warning("removing capacity of deleted compute environment %s (%s)", arn, name)
            self._remove(name)
        return sorted(orphans)

    # -- launch template ------------------------------------------------------------------

    def _image(self, resources: dict[str, Any], gpu: bool) -> str:
        configs = resources.get("ec2Configuration") or []
        # The entry for this kind of instance (NVIDIA image types are for GPU instances).
        wanted = [c for c in configs if c.get("imageType", "").endswith("_NVIDIA") == gpu]
        wanted = wanted or configs
        if wanted and wanted[0].get("imageIdOverride"):
            return str(wanted[0]["imageIdOverride"])
        if resources.get("imageId"):
            return str(resources["imageId"])
        image_type = wanted[0].get("imageType") if wanted else None
        default = "ECS_AL2023_NVIDIA" if gpu else "ECS_AL2023"
        path = IMAGE_TYPES.get(image_type or default, IMAGE_TYPES[default])
        parameter = AMI_PARAMETER.format(path)
        cached = self._amis.get(parameter)
        if cached and time.monotonic() - cached[0] < AMI_TTL_SECONDS:
            return cached[1]
        out = self._client("ssm").get_parameters(Names=[parameter])
        if not out.get("Parameters"):
            raise CapacityError(
                f"CLIENT_ERROR - the ECS-optimized AMI parameter {parameter} does not exist in "
                f"{settings().region}: set computeResources.imageId (or ec2Configuration "
                "imageIdOverride) to an ECS-optimized AMI."
            )
        image = str(out["Parameters"][0]["Value"])
        self._amis[parameter] = (time.monotonic(), image)
        return image

    def _template_data(self, ce: dict[str, Any], plan: Plan) -> dict[str, Any]:
        resources = ce["computeResources"]
        cluster = (ce.get("ecsClusterArn") or "").rsplit("/", 1)[-1]
        if not cluster:
            raise CapacityError(
                f"CLIENT_ERROR - compute environment {ce['computeEnvironmentName']} has no ECS "
                "cluster."
            )
        # ECS_RESERVED_MEMORY matches the memory model of domain.capacity (the Batch AMI's).
        config = [f"ECS_CLUSTER={cluster}", "ECS_RESERVED_MEMORY=32",
                  "ECS_ENABLE_TASK_IAM_ROLE=true"]
        if plan.spot:
            config.append("ECS_ENABLE_SPOT_INSTANCE_DRAINING=true")
        user_data = "\n".join(
            ["#!/bin/bash", "cat <<'EOF' >> /etc/ecs/ecs.config", *config, "EOF", ""]
        )
        role = str(resources["instanceRole"])
        tags = [{"Key": k, "Value": v} for k, v in _owned_tags(ce).items()]
        data: dict[str, Any] = {
            "ImageId": self._image(resources, plan.gpu),
            "IamInstanceProfile": {"Arn": role} if role.startswith("arn:") else {"Name": role},
            "UserData": base64.b64encode(user_data.encode()).decode(),
            # IMDSv2 only; a hop limit of 2 lets containers in bridge mode reach it.
            "MetadataOptions": {
                "HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled",
            },
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        }
        if resources.get("securityGroupIds"):
            data["SecurityGroupIds"] = list(resources["securityGroupIds"])
        if resources.get("ec2KeyPair"):
            data["KeyName"] = resources["ec2KeyPair"]
        return data

    def _launch_template(self, name: str, ce: dict[str, Any], plan: Plan) -> None:
        ec2 = self._client("ec2")
        data = self._template_data(ce, plan)
        # The version description carries a digest of the data: a cheap, exact "changed?".
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
        digest = f"batchplane:{digest}"
        try:
            latest = ec2.describe_launch_template_versions(
                LaunchTemplateName=name, Versions=["$Latest"]
            )["LaunchTemplateVersions"]
        except ClientError as e:
            if e.response["Error"]["Code"] not in _LT_NOT_FOUND:
                raise
            ec2.create_launch_template(
                LaunchTemplateName=name,
                VersionDescription=digest,
                LaunchTemplateData=data,
                TagSpecifications=[{
                    "ResourceType": "launch-template",
                    "Tags": [{"Key": k, "Value": v} for k, v in _owned_tags(ce).items()],
                }],
            )
            return
        if not latest or latest[0].get("VersionDescription") != digest:
            ec2.create_launch_template_version(
                LaunchTemplateName=name, VersionDescription=digest, LaunchTemplateData=data
            )

    # -- Auto Scaling group ---------------------------------------------------------------

    def _policy(self, name: str, plan: Plan) -> dict[str, Any]:
        distribution: dict[str, Any] = {
            "OnDemandAllocationStrategy": "prioritized",
            "OnDemandBaseCapacity": 0,
            "OnDemandPercentageAboveBaseCapacity": 0 if plan.spot else 100,
        }
        if plan.spot:
            distribution["SpotAllocationStrategy"] = plan.spot_strategy
            if plan.spot_pools:
                distribution["SpotInstancePools"] = plan.spot_pools
            if plan.spot_max_price:
                distribution["SpotMaxPrice"] = plan.spot_max_price
        return {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": name, "Version": "$Latest"},
                "Overrides": [
                    {"InstanceType": t.name, "WeightedCapacity": str(t.vcpus)}
                    for t in plan.instance_types
                ],
            },
            "InstancesDistribution": distribution,
        }

    def _group(self, name: str, ce: dict[str, Any], plan: Plan) -> None:
        asg = self._client("autoscaling")
        resources = ce["computeResources"]
        policy = self._policy(name, plan)
        wanted: dict[str, Any] = {
            "AutoScalingGroupName": name,
            "MinSize": plan.min_vcpus,
            "MaxSize": plan.max_vcpus,
            "DesiredCapacity": plan.desired_vcpus,
            "VPCZoneIdentifier": ",".join(resources["subnets"]),
            "MixedInstancesPolicy": policy,
            "NewInstancesProtectedFromScaleIn": True,
        }
        if resources.get("placementGroup"):
            wanted["PlacementGroup"] = resources["placementGroup"]
        found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not found:
            tags = {**(resources.get("tags") or {}), **_owned_tags(ce)}
            asg.create_auto_scaling_group(
                **wanted,
                Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()],
            )
            return
        group = found[0]
        distribution = wanted["MixedInstancesPolicy"]["InstancesDistribution"]
        had = (group.get("MixedInstancesPolicy") or {}).get("InstancesDistribution", {})
        if had.get("SpotMaxPrice") and "SpotMaxPrice" not in distribution:
            distribution["SpotMaxPrice"] = ""  # clears the old cap: pay up to On-Demand again
        if group.get("Instances"):
            self._protect(group, ce, releasing=plan.desired_vcpus < group["DesiredCapacity"])
        if _differs(group, wanted):
            asg.update_auto_scaling_group(**wanted)

    def _busy(self, ce: dict[str, Any]) -> set[str] | None:
        """EC2 instances of the environment's cluster that run or are starting a task; None
        when that cannot be known (no cluster)."""
        ecs = self._client("ecs")
        cluster = ce.get("ecsClusterArn")
        if not cluster:
            return None
        busy: set[str] = set()
        try:
            pages = ecs.get_paginator("list_container_instances").paginate(cluster=cluster)
            arns = [a for page in pages for a in page["containerInstanceArns"]]
            for i in range(0, len(arns), 100):
                out = ecs.describe_container_instances(
                    cluster=cluster, containerInstances=arns[i:i + 100]
                )
                busy |= {c["ec2InstanceId"] for c in out["containerInstances"]
                         if c.get("runningTasksCount", 0) + c.get("pendingTasksCount", 0) > 0}
        except ClientError as e:
            if e.response["Error"]["Code"] == "ClusterNotFoundException":
                return None
            raise
        return busy

    def _protect(self, group: dict[str, Any], ce: dict[str, Any], *, releasing: bool) -> None:
        """Protect instances that run tasks; when the group shrinks, release idle ones so
        that Auto Scaling terminates those and only those."""
        busy = self._busy(ce)
        if busy is None:
            return
        instances = group.get("Instances", [])
        guard = [i["InstanceId"] for i in instances
                 if i["InstanceId"] in busy and not i.get("ProtectedFromScaleIn")]
        self._set_protection(group["AutoScalingGroupName"], guard, protected=True)
        if releasing:
            idle = [i["InstanceId"] for i in instances
                    if i["InstanceId"] not in busy and i.get("ProtectedFromScaleIn")]
            self._set_protection(group["AutoScalingGroupName"], idle, protected=False)

    def _set_protection(self, name: str, instances: list[str], *, protected: bool) -> None:
        for i in range(0, len(instances), 50):  # the API takes up to 50 instances per call
            self._client("autoscaling").set_instance_protection(
                AutoScalingGroupName=name, InstanceIds=instances[i:i + 50],
                ProtectedFromScaleIn=protected,
            )


def _owned_tags(ce: dict[str, Any]) -> dict[str, str]:
    return {ENVIRONMENT_TAG: ce["computeEnvironmentArn"], OWNER_TAG: settings().table_name}


def _tags(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def _differs(group: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the described ``group`` lacks any of the settings in ``wanted``."""
    keys = ("MinSize", "MaxSize", "DesiredCapacity", "NewInstancesProtectedFromScaleIn",
            "PlacementGroup")
    if any(key in wanted and group.get(key) != wanted[key] for key in keys):
        return True
    subnets = set((group.get("VPCZoneIdentifier") or "").split(","))
    if subnets != set(wanted["VPCZoneIdentifier"].split(",")):
        return True
    have = group.get("MixedInstancesPolicy") or {}
    want = wanted["MixedInstancesPolicy"]
    template = have.get("LaunchTemplate", {})
    overrides = [(o.get("InstanceType"), str(o.get("WeightedCapacity")))
                 for o in template.get("Overrides", [])]
    if overrides != [(o["InstanceType"], o["WeightedCapacity"])
                     for o in want["LaunchTemplate"]["Overrides"]]:
        return True
    if template.get("LaunchTemplateSpecification", {}).get("Version") != "$Latest":
        return True
    distribution = have.get("InstancesDistribution") or {}
    return any(str(distribution.get(k, "")) != str(v)
               for k, v in want["InstancesDistribution"].items())
