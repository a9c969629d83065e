"""The provisioner function against moto (EC2, Auto Scaling, SSM, ECS): launch templates
and Auto Scaling groups for EC2/SPOT compute environments, driven by the sample events in
events/provisioner/."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane import clock, wiring
from batchplane.adapters.autoscaling import AutoScalingCapacity, group_name
from batchplane.domain import jobs as rules
from batchplane.service.provisioning import Provisioning
from batchplane.store.dynamodb import Item
from batchplane.store.jobs import JobStore
from batchplane.wiring import services

from .conftest import api_call, load_event

if TYPE_CHECKING:
    from collections.abc import Iterator

    from batchplane.local.router import Function

AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


# -- fixtures and helpers --------------------------------------------------------------


@pytest.fixture(scope="module")
def controller() -> AutoScalingCapacity:
    """The Auto Scaling adapter, shared by this module's tests so that what it caches (the
    clients' parsed service models, the AMI id that moto always answers the same) is
    loaded once rather than in every test."""
    return AutoScalingCapacity(
        **{
            name: boto3.session.Session().client(
                name,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for name in ("ec2", "autoscaling", "ssm", "ecs")
        }
    )


@pytest.fixture
def capacity(
    moto_env: dict[str, Any], controller: AutoScalingCapacity  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
) -> Iterator[AutoScalingCapacity]:
    """What the provisioner function gets from wiring for BATCHPLANE_LAUNCHER=ecs."""
    wiring.register_capacity("ecs", controller)
    yield controller
    wiring._capacities.pop("ecs", None)
    wiring.reset()


@pytest.fixture
def env(
    moto_env: dict[str, Any], functions: dict[str, Function], capacity: AutoScalingCapacity  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
) -> dict[str, Any]:
    """A SPOT environment (queue "spotq") and an EC2 environment (queue "ec2q"), both
    created through the API function, and the job definition "work" (2 vCPUs, 2 GiB)."""
    ec2 = moto_env["ec2"]
    vpc = ec2.describe_subnets(SubnetIds=[moto_env["subnet"]])["Subnets"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    api = functions["ApiFunction"]
    for name, resources in {
        "spot": {
            "type": "SPOT",
            "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED",
            "bidPercentage": 60,
            "minvCpus": 0,
            "maxvCpus": 64,
            "instanceTypes": ["c5", "m5"],
            "tags": {"team": "genomics"},
        },
        "ondemand": {
            "type": "EC2",
            "allocationStrategy": "BEST_FIT",
            "minvCpus": 2,
            "maxvCpus": 16,
            "instanceTypes": ["m5"],
        },
    }.items():
        status, out = api_call(
            api,
            "createcomputeenvironment",
            {
                "computeEnvironmentName": name,
                "type": "MANAGED",
                "computeResources": {
                    **resources,
                    "subnets": [moto_env["subnet"]],
                    "securityGroupIds": [sg],
                    "instanceRole": "ecsInstanceRole",
                },
            },
        )
        assert status == 200, out
    for queue, ce in (("spotq", "spot"), ("ec2q", "ondemand")):
        status, out = api_call(
            api,
            "createjobqueue",
            {
                "jobQueueName": queue,
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": ce}],
            },
        )
        assert status == 200, out
    status, out = api_call(
        api,
        "registerjobdefinition",
        {
            "jobDefinitionName": "work",
            "type": "container",
            "containerProperties": {
                "image": "busybox",
                "command": ["true"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "2"},
                    {"type": "MEMORY", "value": "2048"},
                ],
            },
        },
    )
    assert status == 200, out
    return {
        "api": api,
        "provisioner": functions["ProvisionerFunction"],
        "sg": sg,
        "asg": boto3.client("autoscaling"),
        "ec2": ec2,
        "ecs": moto_env["ecs"],
        "subnet": moto_env["subnet"],
    }


def _raw(name: str) -> dict[str, Any]:
    store = services().store
    return store.client.get_item(
        TableName=store.table, Key={"pk": {"S": f"CE#{name}"}, "sk": {"S": "#"}}
    )["Item"]


def _change(sample: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A sample compute environment change event re-aimed at a stored environment item."""
    event = load_event(f"provisioner/{sample}")
    doc = Item.from_dynamo(raw).doc
    event["resources"] = [doc["computeEnvironmentArn"]]
    event["detail"]["computeEnvironment"] = doc
    return event


def _tick(env: dict[str, Any]) -> dict[str, int]:
    return env["provisioner"].invoke(load_event("provisioner/tick.json"))["desiredvCpus"]


def _ce(env: dict[str, Any], name: str) -> dict[str, Any]:
    _, out = api_call(env["api"], "describecomputeenvironments", {"computeEnvironments": [name]})
    return out["computeEnvironments"][0]


def _group(env: dict[str, Any], name: str) -> dict[str, Any] | None:
    groups = env["asg"].describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name(_ce(env, name))]
    )
    return (groups["AutoScalingGroups"] or [None])[0]


def _submit(
    env: dict[str, Any], queue: str, count: int, status: str = rules.RUNNABLE, ce: str | None = None
) -> list[str]:
    """Submit ``count`` jobs and move them to ``status`` as the scheduler would (STARTING
    and RUNNING jobs are placed on ``ce``)."""
    jobs = JobStore(services().store)
    ids = []
    for n in range(count):
        code, out = api_call(
            env["api"],
            "submitjob",
            {"jobName": f"j{n}", "jobQueue": queue, "jobDefinition": "work"},
        )
        assert code == 200, out
        item = jobs.get(out["jobId"])
        assert item is not None
        for step in (rules.RUNNABLE, rules.STARTING, rules.RUNNING):
            if item.doc["status"] == status:
                break
            if item.doc["status"] == step:  # SubmitJob admitted it (RUNNABLE) already
                continue
            rules.move(item.doc, step)
            if step == rules.STARTING:
                item.extra["ce"] = ce
            jobs.save(item)
        ids.append(out["jobId"])
    return ids


def _finish(job_ids: list[str]) -> None:
    jobs = JobStore(services().store)
    for job_id in job_ids:
        item = jobs.get(job_id)
        assert item is not None
        rules.move(
            item.doc, rules.SUCCEEDED if item.doc["status"] == rules.RUNNING else rules.FAILED
        )
        jobs.save(item)


# -- SPOT: creation, scale-out, update, deletion ----------------------------------------


def test_spot_environment_from_insert_to_remove(env: dict[str, Any]) -> None:
    # The event of a new environment: launch template and group, at minvCpus.
    assert env["provisioner"].invoke(_change("ce-created.json", _raw("spot")))["desiredvCpus"]["spot"] == 0
    ce = _ce(env, "spot")
    name = group_name(ce)
    data = env["ec2"].describe_launch_template_versions(
        LaunchTemplateName=name, Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    ami = boto3.client("ssm").get_parameters(Names=[AMI_PARAMETER])["Parameters"][0]["Value"]
    assert data["ImageId"] == ami
    assert data["IamInstanceProfile"] == {"Name": "ecsInstanceRole"}
    assert data["SecurityGroupIds"] == [env["sg"]]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    user_data = base64.b64decode(data["UserData"]).decode()
    assert f"ECS_CLUSTER={ce['ecsClusterArn'].rsplit('/', 1)[-1]}" in user_data
    assert "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true" in user_data
    template = env["ec2"].describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"][
        0
    ]
    assert {
        "Key": "batchplane:compute-environment",
        "Value": ce["computeEnvironmentArn"],
    } in template["Tags"]
    group = _group(env, "spot")
    assert group is not None
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 64, 0)
    assert group["VPCZoneIdentifier"] == env["subnet"]
    assert group["NewInstancesProtectedFromScaleIn"] is True
    policy = group["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] == name
    distribution = policy["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 0
    assert distribution["SpotAllocationStrategy"] == "capacity-optimized"
    assert distribution["SpotMaxPrice"] == "0.02550"  # 60% of c5's $0.0425 per vCPU-hour
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert (
        tags["team"] == "genomics"
        and tags["batchplane:compute-environment"] == ce["computeEnvironmentArn"]
    )
    assert ce["computeResources"]["desiredvCpus"] == 0

    # Five RUNNABLE 2-vCPU jobs: the tick scales out to 10 vCPUs on types that fit them.
    _submit(env, "spotq", 5)
    _tick(env)
    assert _ce(env, "spot")["computeResources"]["desiredvCpus"] == 10
    group = _group(env, "spot")
    assert group is not None and group["DesiredCapacity"] == 10
    overrides = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert overrides[0] == {"InstanceType": "c5.large", "WeightedCapacity": "2"}
    assert {o["InstanceType"] for o in overrides} == {
        "c5.large",
        "c5.xlarge",
        "c5.2xlarge",
        "m5.large",
        "m5.xlarge",
        "m5.2xlarge",
    }
    assert len(group["Instances"]) == 5  # moto launches the first type: 5 x c5.large

    # UpdateComputeEnvironment (its UPDATED event): new maximum, types, and a raised
    # desiredvCpus that holds until demand has stayed below it for the scale-in delay.
    code, out = api_call(
        env["api"],
        "updatecomputeenvironment",
        {
            "computeEnvironment": "spot",
            "computeResources": {
                "maxvCpus": 128,
                "desiredvCpus": 24,
                "instanceTypes": ["m5.xlarge"],
            },
        },
    )
    assert code == 200, out
    env["provisioner"].invoke(_change("ce-updated.json", _raw("spot")))
    group = _group(env, "spot")
    assert group is not None
    assert (group["MaxSize"], group["DesiredCapacity"]) == (128, 24)
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"] == [
        {"InstanceType": "m5.xlarge", "WeightedCapacity": "4"}
    ]
    _tick(env)
    assert _ce(env, "spot")["computeResources"]["desiredvCpus"] == 24
    clock.advance(301)
    _tick(env)
    assert _ce(env, "spot")["computeResources"]["desiredvCpus"] == 12  # the five jobs' instances

    # DeleteComputeEnvironment (its DELETED event): group and template go; twice is harmless.
    last = _delete(env, "spot", "spotq")
    for _ in range(2):
        assert "spot" not in env["provisioner"].invoke(_change("ce-deleted.json", last))["desiredvCpus"]
        assert (
            env["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ]
            == []
        )
        assert (
            env["ec2"].describe_launch_templates(
                Filters=[{"Name": "launch-template-name", "Values": [name]}]
            )["LaunchTemplates"]
            == []
        )


def test_scale_in_keeps_instances_that_run_tasks(env: dict[str, Any]) -> None:
    jobs = _submit(env, "spotq", 3)
    _tick(env)
    group = _group(env, "spot")
    assert group is not None and len(group["Instances"]) == 3
    # One instance joins the cluster and runs a task.
    cluster = _ce(env, "spot")["ecsClusterArn"]
    busy = group["Instances"][1]["InstanceId"]
    env["ecs"].register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": busy})
    )
    task_def = env["ecs"].register_task_definition(
        family="batchplane-probe",
        containerDefinitions=[{"name": "c", "image": "busybox", "memory": 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    env["ecs"].run_task(cluster=cluster, taskDefinition=task_def, count=1)
    _finish(jobs)
    _tick(env)
    clock.advance(301)
    _tick(env)
    group = _group(env, "spot")
    assert group is not None
    assert group["DesiredCapacity"] == 0
    assert [i["InstanceId"] for i in group["Instances"]] == [busy]
    assert group["Instances"][0]["ProtectedFromScaleIn"] is True


# -- EC2: BEST_FIT at min, max, scale-in, DISABLED ------------------------------------


def test_ec2_environment_scales_between_min_and_max(env: dict[str, Any]) -> None:
    _tick(env)
    group = _group(env, "ondemand")
    assert group is not None
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 16, 2)
    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 100
    assert distribution["OnDemandAllocationStrategy"] == "prioritized"
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"] == [
        {"InstanceType": "m5.large", "WeightedCapacity": "2"}
    ]
    user_data = base64.b64decode(
        env["ec2"].describe_launch_template_versions(
            LaunchTemplateName=group_name(_ce(env, "ondemand")), Versions=["$Latest"]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
    ).decode()
    assert "SPOT" not in user_data

    # Demand beyond maxvCpus (running jobs count too) stops at maxvCpus.
    running = _submit(env, "ec2q", 3, rules.RUNNING, ce="ondemand")
    waiting = _submit(env, "ec2q", 6)
    _tick(env)
    assert _ce(env, "ondemand")["computeResources"]["desiredvCpus"] == 16
    group = _group(env, "ondemand")
    assert group is not None and group["DesiredCapacity"] == 16

    # Idle: held through a short gap, then down to minvCpus; a further pass writes nothing.
    _finish(running + waiting)
    _tick(env)
    assert _ce(env, "ondemand")["computeResources"]["desiredvCpus"] == 16
    clock.advance(301)
    _tick(env)
    assert _ce(env, "ondemand")["computeResources"]["desiredvCpus"] == 2
    group = _group(env, "ondemand")
    assert group is not None and group["DesiredCapacity"] == 2 and len(group["Instances"]) == 1
    before = services().store.get("CE#ondemand", "#")
    _tick(env)
    after = services().store.get("CE#ondemand", "#")
    assert before is not None and after is not None and after.version == before.version

    # DISABLED: running jobs keep their capacity, waiting ones get none.
    code, _ = api_call(
        env["api"],
        "updatecomputeenvironment",
        {"computeEnvironment": "ondemand", "state": "DISABLED"},
    )
    assert code == 200
    _submit(env, "ec2q", 2, rules.RUNNING, ce="ondemand")
    _submit(env, "ec2q", 4)
    _tick(env)
    assert _ce(env, "ondemand")["computeResources"]["desiredvCpus"] == 2
    group = _group(env, "ondemand")
    assert group is not None and group["DesiredCapacity"] == 2


def test_bad_subnet_marks_the_environment_invalid_until_fixed(env: dict[str, Any]) -> None:
    code, out = api_call(
        env["api"],
        "createcomputeenvironment",
        {
            "computeEnvironmentName": "broken",
            "type": "MANAGED",
            "computeResources": {
                "type": "EC2",
                "maxvCpus": 8,
                "instanceTypes": ["m5"],
                "subnets": ["subnet-00000000000000000"],
                "instanceRole": "ecsInstanceRole",
            },
        },
    )
    assert code == 200, out
    _tick(env)
    ce = _ce(env, "broken")
    assert ce["status"] == "INVALID"
    assert (
        ce["statusReason"].startswith("CLIENT_ERROR - ") and "subnet" in ce["statusReason"].lower()
    )
    code, out = api_call(
        env["api"],
        "updatecomputeenvironment",
        {"computeEnvironment": "broken", "computeResources": {"subnets": [env["subnet"]]}},
    )
    assert code == 200, out
    _tick(env)
    ce = _ce(env, "broken")
    assert (ce["status"], ce["statusReason"]) == ("VALID", "ComputeEnvironment Healthy")
    assert _group(env, "broken") is not None


def test_tick_skips_fargate_and_sweeps_capacity_whose_remove_record_was_lost(
    env: dict[str, Any],
) -> None:
    api = env["api"]
    assert (
        api_call(
            api,
            "createcomputeenvironment",
            {
                "computeEnvironmentName": "fg",
                "type": "MANAGED",
                "computeResources": {"type": "FARGATE", "maxvCpus": 8, "subnets": [env["subnet"]]},
            },
        )[0]
        == 200
    )
    assert (
        api_call(
            api, "createcomputeenvironment", {"computeEnvironmentName": "own", "type": "UNMANAGED"}
        )[0]
        == 200
    )
    assert set(wiring.provisioning().provision()) == {"spot", "ondemand"}
    assert len(env["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]) == 2
    name = group_name(_ce(env, "ondemand"))
    _delete(env, "ondemand", "ec2q")  # and its DELETED event never reaches the provisioner
    _tick(env)
    assert (
        env["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        == []
    )
    assert _group(env, "spot") is not None  # the live environment keeps its group


@pytest.mark.usefixtures("moto_env")
def test_without_a_capacity_controller_the_provisioner_does_nothing() -> None:
    assert wiring._capacity("local") is None  # local mode: no Auto Scaling
    idle = Provisioning(services().repos, services().resources, None)
    assert idle.provision() == {} and idle.sweep() == []


# -- helpers ---------------------------------------------------------------------------


def _delete(env: dict[str, Any], name: str, queue: str) -> dict[str, Any]:
    """Delete the environment through the API; returns its last stored item."""
    api = env["api"]
    assert api_call(api, "updatejobqueue", {"jobQueue": queue, "state": "DISABLED"})[0] == 200
    assert (
        api_call(
            api, "updatecomputeenvironment", {"computeEnvironment": name, "state": "DISABLED"}
        )[0]
        == 200
    )
    assert api_call(api, "deletejobqueue", {"jobQueue": queue})[0] == 200
    last = _raw(name)
    code, out = api_call(api, "deletecomputeenvironment", {"computeEnvironment": name})
    assert code == 200, out
    return last
