"""Which of moto's Batch tests are not run against batchplane, and which are expected to
fail, each with its reason (docs/compatibility.md, "moto's Batch tests", gives the AWS
documentation for each).

Keys are ``file.py::test_name`` (every parameter of it) or ``file.py::test_name[param]``
(that one), or ``file.py`` (the whole file). Every expected failure is a strict xfail: a
test that starts passing fails the run, so its entry is noticed and removed.
"""

# Tests of moto itself, not of the Batch API: skipped.
NOT_APPLICABLE: dict[str, str] = {
    "test_utils.py": "tests moto.batch.utils and moto.batch.models.Job in this process",
    "test_server.py": "tests moto's own server app (moto.server.create_backend_app) in this process",
    "test_batch_eks.py::test_eks_job_definition_validation_no_properties":
        "builds moto.batch.models.JobDefinition against moto's in-process batch_backends",
    "test_batch_eks.py::test_eks_job_definition_validation_missing_image_direct":
        "builds moto.batch.models.JobDefinition against moto's in-process batch_backends",
    "test_batch_jobs.py::test_submit_job_array_size__reset_while_job_is_running":
        "calls reset() on moto's in-process batch_backends (and moto skips it in server mode)",
}

# Tests asserting what moto does and AWS Batch does not: strict xfail.
_T2 = ("instanceTypes t2.small / t2.medium: AWS Batch takes only the instance types it offers "
       "(ComputeResource.instanceTypes) and refuses others with \"Instance type can only be one of "
       "[...]\", a list without the burstable T families; moto accepts any EC2 type")
_VCPU_025 = ("VCPU 0.25 without platformCapabilities (so EC2): for EC2 resources AWS needs at least "
             "one whole vCPU (ResourceRequirement.value); 0.25 is a Fargate size")
_STREAM = ("reads the log stream <definition>/default/<jobId>: AWS names it "
           "<definition>/default/<ECS task id> (User Guide, Job states, RUNNING)")
_MESSAGE = "asserts moto's own message text; AWS documents the error (ClientException) but not its wording"
MOTO_ONLY: dict[str, str] = {
    "test_batch.py::test_batch_regions":
        "calls a us-west-2 / cn-northwest-1 client on the endpoint of another region: AWS's Batch "
        "endpoints are regional (General Reference, AWS Batch endpoints), and a batchplane stack is one "
        "region's, so it refuses a request signed for another",
    "test_batch_compute_envs.py::test_create_managed_compute_environment": _T2,
    "test_batch_compute_envs.py::test_create_managed_compute_environment_with_tags": _T2,
    "test_batch_compute_envs.py::test_create_managed_compute_environment_with_instance_family":
        "instanceTypes ['t2']: " + _T2.split(": ", 1)[1],
    "test_batch_compute_envs.py::test_create_managed_compute_environment_with_unknown_instance_type":
        "expects error code InvalidParameterValue: CreateComputeEnvironment's errors are ClientException "
        "and ServerException only (API_CreateComputeEnvironment, Errors)",
    "test_batch_compute_envs.py::test_delete_unmanaged_compute_environment":
        "deletes an ENABLED compute environment: AWS requires state DISABLED first (API_DeleteComputeEnvironment)",
    "test_batch_compute_envs.py::test_delete_managed_compute_environment":
        "t2 instance types, and deletes an ENABLED compute environment: AWS requires DISABLED first "
        "(API_DeleteComputeEnvironment)",
    "test_batch_compute_envs.py::test_update_iam_role":
        "expects error code InvalidParameterValue: UpdateComputeEnvironment's errors are ClientException "
        "and ServerException only (API_UpdateComputeEnvironment, Errors)",
    "test_batch_compute_envs.py::test_create_ec2_managed_compute_environment__without_required_params":
        "expects 'Resource minvCpus is required' and 'ServiceRole is required': the API makes minvCpus "
        "optional and serviceRole optional for MANAGED environments (the service-linked role), "
        "API_ComputeResource and API_CreateComputeEnvironment",
    "test_batch_job_queue.py::test_create_job_queue":
        "schedulingPolicyArn='policy_arn': AWS takes the ARN of an existing fair-share scheduling policy "
        "(CreateJobQueue schedulingPolicyArn); moto stores any string",
    "test_batch_job_queue.py::test_create_job_queue_twice": _MESSAGE,
    "test_batch_job_queue.py::test_create_job_queue_incorrect_state": _MESSAGE,
    "test_batch_job_queue.py::test_create_job_queue_without_compute_environment": _MESSAGE,
    "test_batch_job_queue.py::test_job_queue_bad_arn": _MESSAGE,
    "test_batch_job_queue.py::test_delete_job_queue":
        "deletes an ENABLED job queue: AWS requires disabling it first (API_DeleteJobQueue)",
    "test_batch_jobs.py::test_register_job_definition_with_timeout":
        "attemptDurationSeconds 3: the minimum is 60 seconds (API_JobTimeout)",
    "test_batch_jobs.py::test_submit_job_with_timeout":
        "(requires_docker) timeout attemptDurationSeconds 1 at SubmitJob: the minimum is 60 seconds (API_JobTimeout)",
    "test_batch_jobs.py::test_submit_job_with_timeout_set_at_definition":
        "(requires_docker) timeout attemptDurationSeconds 1: the minimum is 60 seconds (API_JobTimeout)",
    "test_batch_jobs.py::test_list_jobs":
        "(requires_docker) expects ListJobs without jobStatus to list jobs of every status: AWS then lists "
        "RUNNING jobs only (API_ListJobs jobStatus)",
    "test_batch_jobs.py::test_cancel_running_job":
        "(requires_docker) expects a SUCCEEDED job without statusReason: AWS reports the ECS task's stop "
        "reason there, 'Essential container in task exited' (API_JobDetail statusReason)",
    "test_batch_jobs.py::test_submit_job_multinode":
        "(requires_docker) expects both nodes' output in one log stream: each node of a multi-node parallel "
        "job is a job of its own, <jobId>#<index>, whose attempts have their own log streams (API_NodeDetails; "
        "User Guide, Multi-node parallel jobs)",
    "test_batch_jobs.py::test_terminate_job": "(requires_docker) " + _STREAM,
    "test_batch_jobs.py::test_dependencies": "(requires_docker) " + _STREAM,
    "test_batch_jobs.py::test_container_overrides":
        "(requires_docker) expects AWS_BATCH_JOB_ID in DescribeJobs' container.environment: AWS sets the "
        "AWS_BATCH_* variables in the container, and container.environment holds the job's own "
        "(API_ContainerDetail environment; the AWS CLI describe-jobs example)",
    "test_batch_tags_job.py::test_submit_job_with_tags":
        "expects error code ValidationError for 51 tags: SubmitJob's errors are ClientException and "
        "ServerException (API_SubmitJob, Errors); the rest of the test (tags on DescribeJobs, "
        "ListTagsForResource, Tag/UntagResource on a job) passes",
    "test_batch_task_definition.py::test_register_task_definition[True]": _VCPU_025,
    "test_batch_task_definition.py::test_reregister_task_definition[True]": _VCPU_025,
    "test_batch_task_definition.py::test_delete_task_definition[True]": _VCPU_025,
    "test_batch_task_definition.py::test_delete_task_definition_by_name[True]": _VCPU_025,
    "test_batch_task_definition.py::test_describe_task_definition[True]": _VCPU_025,
    "test_batch_task_definition.py::test_register_task_definition_with_platform_capability[FARGATE]":
        "FARGATE with the deprecated vcpus/memory (memory 4): Fargate jobs give VCPU and MEMORY as "
        "resourceRequirements, in its fixed pairs (API_ContainerProperties vcpus/memory, API_ResourceRequirement)",
}

# AWS Batch features batchplane deliberately does not offer: it refuses them with a
# ClientException saying so, and these tests fail on it. Strict xfail.
_EKS = "eksProperties: batchplane runs jobs on ECS and refuses EKS job definitions (ClientException)"
NOT_SUPPORTED: dict[str, str] = {
    "test_batch_eks.py::test_register_job_definition_with_eks_properties": _EKS,
    "test_batch_eks.py::test_submit_job_with_eks_properties_override": _EKS,
    "test_batch_eks.py::test_submit_eks_job_without_override": _EKS,
    "test_batch_eks.py::test_eks_job_definition_validation_missing_containers": _EKS,
    "test_batch_eks.py::test_eks_job_definition_defaults": _EKS,
}

# Where batchplane is short of AWS Batch and the fix lies outside its domain rules (see
# docs/compatibility.md). Strict xfail.
KNOWN_GAPS: dict[str, str] = {}  # none left: CloudFormation's AWS::Batch::* are batchplane's now

# The prefix each kind of expected failure carries in its xfail reason (the runner counts by it).
KINDS = {"moto-only": MOTO_ONLY, "not supported": NOT_SUPPORTED, "batchplane gap": KNOWN_GAPS}
