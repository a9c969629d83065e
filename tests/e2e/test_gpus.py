"""GPU jobs in local mode, through the unmodified boto3 client: the stack of these tests
shares four GPUs (``gpus=4``, as on a machine whose nvidia-smi lists four). Each attempt
sees only the devices it was given (CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES), two
attempts never share one, and a job waits while too few are free."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .support import ec2_resources, uniq, wait_done, wait_status

if TYPE_CHECKING:
    from pathlib import Path


def _queue(batch: Any, instance_type: str) -> str:
    ce = uniq("gpu-ce")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED",
                                     computeResources=ec2_resources(instanceTypes=[instance_type], maxvCpus=256))
    name = uniq("gpu-q")
    batch.create_job_queue(jobQueueName=name, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    return name


def _definition(batch: Any, command: str, gpus: int) -> str:
    name = uniq("gpu")
    needs = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}]
    if gpus:
        needs.append({"type": "GPU", "value": str(gpus)})
    batch.register_job_definition(jobDefinitionName=name, type="container", containerProperties={
        "image": "nvidia/cuda", "command": ["sh", "-c", command], "resourceRequirements": needs})
    return name


def _devices(directory: Path, job_id: str, timeout: float = 20.0) -> str:
    path = directory / job_id
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{job_id} wrote no devices"
        time.sleep(0.05)
    return path.read_text().strip()


def test_four_one_gpu_jobs_run_at_once_on_distinct_devices_and_a_fifth_waits(batch: Any, tmp_path: Path) -> None:
    queue = _queue(batch, "g4dn.xlarge")  # one GPU each
    command = (f'echo "$CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES" > {tmp_path}/$AWS_BATCH_JOB_ID; '
               f"while [ ! -f {tmp_path}/go ]; do sleep 0.05; done")
    jd = _definition(batch, command, gpus=1)
    first = [batch.submit_job(jobName=uniq("g"), jobQueue=queue, jobDefinition=jd)["jobId"] for _ in range(4)]
    for job in first:
        wait_status(batch, job, "RUNNING", timeout=20)
    seen = [_devices(tmp_path, job).split() for job in first]
    assert all(cuda == nvidia for cuda, nvidia in seen), seen  # each variable names the same device
    assert sorted(cuda for cuda, _ in seen) == ["0", "1", "2", "3"]
    fifth = batch.submit_job(jobName=uniq("g"), jobQueue=queue, jobDefinition=jd)["jobId"]
    waiting = wait_status(batch, fifth, "RUNNABLE", timeout=20)
    deadline = time.monotonic() + 2
    while "GPU" not in (waiting.get("statusReason") or "") and time.monotonic() < deadline:
        waiting = wait_status(batch, fifth, "RUNNABLE")
    assert "needs 1 GPUs and 0 of this machine's 4 are free" in (waiting.get("statusReason") or ""), waiting
    (tmp_path / "go").touch()
    assert all(wait_done(batch, job, timeout=30)["status"] == "SUCCEEDED" for job in first)
    assert wait_done(batch, fifth, timeout=60)["status"] == "SUCCEEDED"
    assert _devices(tmp_path, fifth).split()[0] in {"0", "1", "2", "3"}


def test_a_two_gpu_job_sees_two_devices_and_a_job_without_gpus_sees_none(batch: Any, tmp_path: Path) -> None:
    queue = _queue(batch, "g4dn.12xlarge")  # four GPUs an instance
    show = f'echo "[$CUDA_VISIBLE_DEVICES] [$NVIDIA_VISIBLE_DEVICES]" > {tmp_path}/$AWS_BATCH_JOB_ID'
    two = batch.submit_job(jobName=uniq("g2"), jobQueue=queue, jobDefinition=_definition(batch, show, 2))["jobId"]
    none = batch.submit_job(jobName=uniq("g0"), jobQueue=queue, jobDefinition=_definition(batch, show, 0))["jobId"]
    assert wait_done(batch, two, timeout=30)["status"] == "SUCCEEDED"
    assert wait_done(batch, none, timeout=30)["status"] == "SUCCEEDED"
    cuda, nvidia = _devices(tmp_path, two).split()
    devices = cuda.strip("[]").split(",")
    assert len(devices) == 2 and len(set(devices)) == 2 and set(devices) <= {"0", "1", "2", "3"}, cuda
    assert nvidia == cuda
    assert _devices(tmp_path, none) == "[] [void]"
