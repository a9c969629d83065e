"""Runs attempts as ECS tasks (Fargate, Fargate Spot, or the environment's EC2 cluster)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from botocore.exceptions import ClientError

from .. import aws
from ..domain import jobdefs
from ..ports import CONTAINER, CapacityUnavailable, LaunchFailed, LaunchRequest, run_of, started_by

LOG_GROUP = "/aws/batch/job"
# RunTask failure reasons that mean "no room now", not "this task cannot run": no instance
# with enough CPU, memory, GPU or ports, an agent disconnected, Fargate (Spot) capacity short.
_NO_ROOM = ("RESOURCE:", "AGENT", "Capacity is unavailable")
# 4xx answers that do not mean "refused": try again later.
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


def _refused(error: ClientError) -> bool:
    """ECS answered and refused the request: nothing was started."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    client_error = HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR
    return client_error and error.response.get("Error", {}).get("Code") not in _THROTTLED


class EcsLauncher:
    """One task definition per job definition revision and platform; one RunTask per
    attempt, made idempotent by its clientToken."""

    def __init__(self, ecs: Any | None = None) -> None:
        self.ecs = ecs or aws.client("ecs")
        self._families: dict[str, str] = {}

    def _task_definition(self, job: dict[str, Any], fargate: bool) -> str:
        jd = job["jobDefinition"].rsplit("/", 1)[-1]  # name:revision
        name, revision = jd.split(":")
        family = f"batchplane-{name}-{revision}{'-fargate' if fargate else ''}"
        node = "nodeDetails" in job
        if node:
            # Each node range of a multinode definition may have its own image; nodes
            # take awsvpc, so that each has the private address the others reach it at.
            family += "-node-" + hashlib.sha256(job["container"]["image"].encode()).hexdigest()[:12]
        if family in self._families:
            return self._families[family]
        container = job["container"]
        need = jobdefs.requirements(container)
        definition: dict[str, Any] = {
            "family": family,
            "containerDefinitions": [
                {
                    "name": CONTAINER,
                    "image": container["image"],
                    "essential": True,
                    # Container-level reservations; each RunTask overrides them per job.
                    "cpu": int(need["VCPU"] * 1024),
                    "memory": int(need["MEMORY"]),
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": LOG_GROUP,
                            "awslogs-region": self.ecs.meta.region_name,
                            "awslogs-stream-prefix": name,
                        },
                    },
                }
            ],
        }
        for role, key in (("jobRoleArn", "taskRoleArn"), ("executionRoleArn", "executionRoleArn")):
            if container.get(role):
                definition[key] = container[role]
        if node:
            definition["networkMode"] = "awsvpc"
        if fargate:
            definition.update(
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu=str(int(need["VCPU"] * 1024)),
                memory=str(int(need["MEMORY"])),
            )
        out = self.ecs.register_task_definition(**definition)
        arn = out["taskDefinition"]["taskDefinitionArn"]
        self._families[family] = arn
        return arn

    def launch(self, request: LaunchRequest) -> str:
        ce = request.compute_environment
        resources = ce.get("computeResources") or {}
        fargate = resources.get("type") in ("FARGATE", "FARGATE_SPOT")
        cluster = ce.get("ecsClusterArn")
        if not cluster:
            raise LaunchFailed(
                f"compute environment {ce['computeEnvironmentName']} has no ECS cluster yet"
            )
        job = request.job
        need = jobdefs.requirements(job["container"])
        override: dict[str, Any] = {
            "name": CONTAINER,
            "command": job["container"].get("command") or [],
            "environment": [{"name": k, "value": v} for k, v in request.environment.items()],
        }
        if not fargate:
            override.update(cpu=int(need["VCPU"] * 1024), memory=int(need["MEMORY"]))
        try:
            task_definition = self._task_definition(job, fargate)
        except ClientError as e:
            if _refused(e):
                raise LaunchFailed(f"RegisterTaskDefinition: {e}") from e
            raise
        kwargs: dict[str, Any] = {
            "cluster": cluster,
            "taskDefinition": task_definition,
            "overrides": {"containerOverrides": [override]},
            "startedBy": started_by(request.run),
            "clientToken": f"{job['jobId']}-{request.run}",
            "count": 1,
        }
        if "nodeDetails" in job:
            # A multi-node parallel job's nodes: one per container instance, each its own ENI.
            kwargs["placementConstraints"] = [{"type": "distinctInstance"}]
            kwargs["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": resources.get("subnets", []),
                    "securityGroups": resources.get("securityGroupIds", []),
                }
            }
        if fargate:
            kwargs["capacityProviderStrategy"] = [{"capacityProvider": resources["type"], "weight": 1}]
            kwargs["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": resources.get("subnets", []),
                    "securityGroups": resources.get("securityGroupIds", []),
                    "assignPublicIp": "ENABLED",
                }
            }
        try:
            out = self.ecs.run_task(**kwargs)
        except self.ecs.exceptions.InvalidParameterException as e:
            if "No Container Instances were found" in str(e):  # none has registered yet
                raise CapacityUnavailable("no container instance has registered in the cluster yet") from e
            raise LaunchFailed(str(e)) from e
        except ClientError as e:
            if _refused(e):
                raise LaunchFailed(str(e)) from e
            raise  # throttled, a server error: the task may have started
        failures = out.get("failures") or []
        if out.get("tasks") and not failures:
            return out["tasks"][0]["taskArn"]
        reasons = [str(f.get("reason", "")) for f in failures]
        if not failures and not fargate:
            raise CapacityUnavailable("no registered container instance has room for the task")
        if reasons and all(r.startswith(_NO_ROOM) for r in reasons):
            raise CapacityUnavailable(", ".join(reasons))
        raise LaunchFailed(f"RunTask failed: {failures}")

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for cluster in clusters:
            instances = self.ecs.list_container_instances(
                cluster=cluster, filter=f"ec2InstanceId == {instance_id}"
            )["containerInstanceArns"]
            for ci in instances:
                arns = self.ecs.list_tasks(cluster=cluster, containerInstance=ci)["taskArns"]
                if not arns:
                    continue
                for task in self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
                    run = run_of(task.get("startedBy", ""))
                    for override in task.get("overrides", {}).get("containerOverrides", []):
                        env = {e["name"]: e["value"] for e in override.get("environment", [])}
                        if "AWS_BATCH_JOB_ID" in env and run is not None:
                            found.append((env["AWS_BATCH_JOB_ID"], run))
        return found

    def describe(self, task_arns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        by_cluster: dict[str, list[str]] = {}
        for arn in task_arns:
            by_cluster.setdefault(_cluster_of(arn) or "default", []).append(arn)
        found: list[dict[str, Any]] = []
        for cluster, arns in by_cluster.items():
            for start in range(0, len(arns), 100):  # DescribeTasks takes 100 at a time
                try:
                    tasks = self.ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + 100])["tasks"]
                except self.ecs.exceptions.ClusterNotFoundException:
                    continue  # the environment's cluster is gone, and its tasks with it
                found += [_as_event_detail(t) for t in tasks]
        # ECS answers an ARN it no longer knows (an hour after the task stopped) with a
        # MISSING failure; whatever did not come back is missing either way.
        seen = {t["taskArn"] for t in found}
        return found, [a for a in task_arns if a not in seen]

    def stop(self, task_arn: str, reason: str) -> None:
        cluster = _cluster_of(task_arn)
        kwargs = {"task": task_arn, "reason": reason[:255]}
        if cluster:
            kwargs["cluster"] = cluster
        self.ecs.stop_task(**kwargs)


class EcsProvisioner:
    """One ECS cluster per compute environment, named as AWS Batch names them. Fargate
    environments get the FARGATE and FARGATE_SPOT capacity providers; EC2 capacity (Auto
    Scaling groups) is the provisioner function's job."""

    def __init__(self, ecs: Any | None = None) -> None:
        self.ecs = ecs or aws.client("ecs")

    def create_environment(self, ce: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "clusterName": f"{ce['computeEnvironmentName']}_Batch_{ce['uuid'].replace('-', '')[:24]}",
            "tags": [{"key": "batchplane:compute-environment", "value": ce["computeEnvironmentArn"]}],
        }
        if (ce.get("computeResources") or {}).get("type") in ("FARGATE", "FARGATE_SPOT"):
            kwargs["capacityProviders"] = ["FARGATE", "FARGATE_SPOT"]
        cluster = self.ecs.create_cluster(**kwargs)["cluster"]
        return {"ecsClusterArn": cluster["clusterArn"]}

    def delete_environment(self, ce: dict[str, Any]) -> None:
        if ce.get("ecsClusterArn"):
            with contextlib.suppress(self.ecs.exceptions.ClusterNotFoundException):
                self.ecs.delete_cluster(cluster=ce["ecsClusterArn"])


def _cluster_of(task_arn: str) -> str | None:
    """The cluster named in a task ARN (``...:task/<cluster>/<id>``); None in the old
    format without one, where ECS means the default cluster."""
    return task_arn.split("/")[1] if task_arn.count("/") >= 2 else None  # noqa: PLR2004 - two slashes: the ARN format that names the cluster (task/<cluster>/<id>)


def _as_event_detail(task: dict[str, Any]) -> dict[str, Any]:
    """A DescribeTasks task as an ECS Task State Change event's detail: the same fields,
    with times as ISO 8601 text rather than the datetimes boto3 parses them into."""
    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value
    return plain(task)
