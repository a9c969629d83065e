"""Job definitions and the job settings they share with SubmitJob overrides."""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import ClientException
from . import checks

TYPES = ("container", "multinode")
PLATFORMS = ("EC2", "FARGATE")
MAX_RETRY_RULES = 5
MAX_RETRY_PATTERN = 512  # characters of an evaluateOnExit pattern
MIN_MEMORY_MIB = 4
_EXIT_CODE = re.compile(r"[0-9]*\*?")
_REASON = re.compile(r"[A-Za-z0-9 \t.:_\-/()]*\*?")
# Plain decimal numbers only: float() would also take "nan", "inf", "1_0" and " 1".
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
# The most vCPUs, MiB or GPUs a container may ask: what the API's integer vcpus and memory
# take (32-bit). "9" * 400 is a plain decimal too, which float() makes inf, and 10**309 an
# integer float() cannot take: the scheduler's arithmetic failed on them for every job of
# the queue.
MAX_RESOURCE = 2**31 - 1
SHOWN_CHARS = 24  # a longer value is said by its length in an error, not echoed

# Fargate's fixed vCPU -> memory (MiB) combinations, as botocore's ResourceRequirement documents them.
FARGATE_MEMORY: dict[str, list[int]] = {
    "0.25": [512, 1024, 2048],
    "0.5": [1024 * g for g in range(1, 5)],
    "1": [1024 * g for g in range(2, 9)],
    "2": [1024 * g for g in range(4, 17)],
    "4": [1024 * g for g in range(8, 31)],
    "8": [1024 * g for g in range(16, 61, 4)],
    "16": [1024 * g for g in range(32, 121, 8)],
    "32": [61440, 122880, 249856],
}


def retry_strategy(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientException("retryStrategy must be an object.")
    out: dict[str, Any] = {}
    if "attempts" in value:
        out["attempts"] = checks.int_range(value["attempts"], 1, 10, "retryStrategy.attempts")
    rules = value.get("evaluateOnExit") or []
    if not isinstance(rules, list) or len(rules) > MAX_RETRY_RULES:
        raise ClientException(
            f"retryStrategy.evaluateOnExit takes at most {MAX_RETRY_RULES} rules."
        )
    checked = []
    for rule in rules:
        if not isinstance(rule, dict):
            raise ClientException("Each evaluateOnExit rule must be an object.")
        action = rule.get("action")
        if not isinstance(action, str) or action.upper() not in ("RETRY", "EXIT"):
            raise ClientException(f"evaluateOnExit action must be RETRY or EXIT; got {action!r}.")
        # Either case is accepted; AWS keeps the action lowercase ("retry", "exit").
        entry = {"action": action.lower()}
        if not any(k in rule for k in ("onExitCode", "onReason", "onStatusReason")):
            raise ClientException(
                "Each evaluateOnExit rule needs at least one of onExitCode, onReason, "
                "onStatusReason."
            )
        for key in ("onExitCode", "onReason", "onStatusReason"):
            if key not in rule:
                continue
            pattern = rule[key]
            if not isinstance(pattern, str) or len(pattern) > MAX_RETRY_PATTERN:
                raise ClientException(f"evaluateOnExit {key} must be a string of at most 512 characters.")
            regex = _EXIT_CODE if key == "onExitCode" else _REASON
            if not regex.fullmatch(pattern):
                what = "digits" if key == "onExitCode" else "letters, numbers, spaces, tabs and .:_-/()"
                raise ClientException(
                    f"evaluateOnExit {key} {pattern!r} is not valid: use {what}, with an "
                    "optional * only at the end."
                )
            entry[key] = pattern
        checked.append(entry)
    if checked:
        if "attempts" not in out:
            raise ClientException(
                "retryStrategy.attempts is required with evaluateOnExit: give the maximum "
                "number of attempts (1 to 10) the rules may retry up to."
            )
        out["evaluateOnExit"] = checked
    return out


def timeout(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientException("timeout must be an object with attemptDurationSeconds.")
    if "attemptDurationSeconds" not in value:
        return {}
    return {
        "attemptDurationSeconds": checks.int_range(
            value["attemptDurationSeconds"], 60, None, "timeout.attemptDurationSeconds"
        )
    }


def resource_requirements(value: Any, what: str) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClientException(f"{what} must be a list of {{type, value}}.")
    seen = set()
    out = []
    for req in value:
        kind = req.get("type") if isinstance(req, dict) else None
        checks.one_of(kind, ("VCPU", "MEMORY", "GPU"), f"{what}.type")
        if kind in seen:
            raise ClientException(f"{what} lists {kind} twice.")
        seen.add(kind)
        raw = req.get("value")
        number = float(raw) if isinstance(raw, str) and _NUMBER.fullmatch(raw) else -1
        if number <= 0 or (kind != "VCPU" and not raw.isdigit()):
            hint = "a positive number such as '1' or '0.5'" if kind == "VCPU" else "a positive integer"
            raise ClientException(f"{what} {kind} value must be {hint}; got {raw!r}.")
        if number > MAX_RESOURCE:
            got = repr(raw) if len(raw) <= SHOWN_CHARS else f"a number of {len(raw):,} characters"
            raise ClientException(f"{what} {kind} value must be at most {MAX_RESOURCE}; got {got}.")
        out.append({"type": kind, "value": raw})
    return out


def environment(value: Any, what: str) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClientException(f"{what} must be a list of {{name, value}}.")
    for i, var in enumerate(value):
        if not isinstance(var, dict) or not isinstance(var.get("name"), str) or not var["name"]:
            raise ClientException(f"Each {what} entry needs a name; {what}[{i}] has none.")
        checks.process_text(var["name"], f"{what}[{i}].name")
        if "=" in var["name"]:
            raise ClientException(
                f"{what}[{i}].name {var['name']!r} contains '=', which separates an environment "
                "variable's name from its value: use a name without '='."
            )
        if var.get("value") is not None:
            if not isinstance(var["value"], str):
                raise ClientException(f"{what} variable {var['name']} must have a string value.")
            checks.process_text(var["value"], f"{what} variable {var['name']!r} value")
        if var["name"].startswith("AWS_BATCH"):
            raise ClientException(
                f"{what} variable {var['name']} is reserved: names starting with AWS_BATCH "
                "are set by the service."
            )
    return [dict(v) for v in value]


def container_overrides(overrides: Any, what: str) -> dict[str, Any]:
    """A containerOverrides object (of SubmitJob, or of a node range), checked."""
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ClientException(f"{what} must be an object.")
    checks.arguments(overrides.get("command"), f"{what}.command")
    environment(overrides.get("environment"), f"{what}.environment")
    resource_requirements(overrides.get("resourceRequirements"), f"{what}.resourceRequirements")
    for legacy in ("vcpus", "memory"):
        if legacy in overrides:
            checks.int_range(overrides[legacy], 1, MAX_RESOURCE, f"{what}.{legacy}")
    return overrides


def requirements(container: dict[str, Any]) -> dict[str, float]:
    """vCPU, memory (MiB) and GPUs one attempt needs, from resourceRequirements or the
    deprecated vcpus/memory."""
    found = {"VCPU": float(container.get("vcpus") or 0), "MEMORY": float(container.get("memory") or 0), "GPU": 0.0}
    for req in container.get("resourceRequirements") or []:
        found[req["type"]] = float(req["value"])
    return found


def parameters(value: Any) -> dict[str, str]:
    """Parameters: strings, which Ref:: placeholders put into the command."""
    params = value or {}
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise ClientException("parameters must be a map of strings to strings.")
    for key, text in params.items():
        checks.process_text(text, f"parameters value of {key!r}")
    return params


def container_properties(value: Any, platforms: list[str]) -> dict[str, Any]:
    """containerProperties (of a container job definition, or a node range's container), checked."""
    if not isinstance(value, dict):
        raise ClientException("containerProperties is required for a container job definition.")
    props = copy.deepcopy(value)
    if not isinstance(props.get("image"), str) or not props["image"]:
        raise ClientException("containerProperties.image is required.")
    props["command"] = checks.arguments(props.get("command"), "containerProperties.command")
    props["environment"] = environment(props.get("environment"), "containerProperties.environment")
    props["resourceRequirements"] = resource_requirements(
        props.get("resourceRequirements"), "containerProperties.resourceRequirements"
    )
    # AWS describes these lists even when the request left them out.
    for listed in ("volumes", "mountPoints", "ulimits", "secrets"):
        props.setdefault(listed, [])
    if "FARGATE" in platforms:
        props.setdefault("fargatePlatformConfiguration", {"platformVersion": "LATEST"})
    for legacy in ("vcpus", "memory"):
        if legacy in props:
            checks.int_range(props[legacy], 1, MAX_RESOURCE, f"containerProperties.{legacy}")
    need = requirements(props)
    if need["VCPU"] <= 0:
        raise ClientException(
            "containerProperties needs a VCPU resourceRequirement (or the deprecated vcpus)."
        )
    if need["MEMORY"] < MIN_MEMORY_MIB:
        raise ClientException(
            "containerProperties needs a MEMORY resourceRequirement of at least 4 MiB "
            "(or the deprecated memory)."
        )
    check_platforms(props, platforms, "containerProperties.resourceRequirements")
    return props


def check_platforms(container: dict[str, Any], platforms: list[str], what: str) -> None:
    """The resource rules of each platform the job may run on."""
    if "EC2" in platforms:
        ec2_resources(container, what)
    if "FARGATE" in platforms:
        fargate_resources(container, what)


def ec2_resources(container: dict[str, Any], what: str) -> None:
    """AWS: "For Amazon EC2 resources, you must specify at least one vCPU." (It also keeps
    the scheduler's milli-vCPU accounting from rounding a job down to nothing.)"""
    vcpu = requirements(container)["VCPU"]
    if vcpu < 1:
        raise ClientException(
            f"{what}: jobs on EC2 resources need a VCPU of at least 1; got {vcpu:g}. "
            "Fractional vCPUs below 1 are for Fargate."
        )


def fargate_resources(container: dict[str, Any], what: str) -> None:
    """Reject a container whose VCPU/MEMORY pair Fargate does not offer, or with GPUs."""
    need = requirements(container)
    vcpu = next((r["value"] for r in container.get("resourceRequirements") or [] if r["type"] == "VCPU"), None)
    if vcpu not in FARGATE_MEMORY:
        raise ClientException(
            f"{what}: Fargate jobs need a VCPU resourceRequirement of "
            f"{', '.join(FARGATE_MEMORY)}; got {vcpu!r}."
        )
    if int(need["MEMORY"]) not in FARGATE_MEMORY[vcpu]:
        allowed = FARGATE_MEMORY[vcpu]
        raise ClientException(
            f"{what}: Fargate does not offer MEMORY {int(need['MEMORY'])} MiB with {vcpu} vCPU: "
            f"use one of {allowed[0]}..{allowed[-1]} MiB in the steps Fargate allows ({allowed})."
        )
    if need["GPU"]:
        raise ClientException(f"{what}: Fargate jobs cannot request a GPU.")


def register(request: dict[str, Any], arn: str, revision: int) -> dict[str, Any]:
    """The described job definition for a valid RegisterJobDefinition request."""
    name = checks.name(request.get("jobDefinitionName"), "jobDefinitionName")
    kind = checks.one_of(request.get("type"), TYPES, "type")
    platforms = checks.strings(request.get("platformCapabilities"), "platformCapabilities") or ["EC2"]
    for p in platforms:
        checks.one_of(p, PLATFORMS, "platformCapabilities")
    for unsupported in ("eksProperties", "ecsProperties"):
        if request.get(unsupported):
            raise ClientException(
                f"{unsupported} is not supported: use containerProperties (type container)."
            )
    params = parameters(request.get("parameters"))
    doc: dict[str, Any] = {
        "jobDefinitionName": name,
        "jobDefinitionArn": arn,
        "revision": revision,
        "status": "ACTIVE",
        "type": kind,
        "parameters": params,
        "tags": checks.tags(request.get("tags")),
        "containerOrchestrationType": "ECS",
    }
    # AWS describes these two only when the request gave them (EC2 and no propagation
    # otherwise): DescribeJobDefinitions shows what was registered.
    if "platformCapabilities" in request:
        doc["platformCapabilities"] = platforms
    if "propagateTags" in request:
        doc["propagateTags"] = bool(request["propagateTags"])
    if kind == "container":
        doc["containerProperties"] = container_properties(request.get("containerProperties"), platforms)
    else:
        if "FARGATE" in platforms:
            raise ClientException(
                "platformCapabilities FARGATE is not available to multinode job definitions: "
                "multi-node parallel jobs cannot run on Fargate."
            )
        if not isinstance(request.get("nodeProperties"), dict):
            raise ClientException("nodeProperties is required for a multinode job definition.")
        # Its node ranges are checked by domain.nodes.node_properties (which uses the
        # container checks above).
        doc["nodeProperties"] = copy.deepcopy(request["nodeProperties"])
    if "schedulingPriority" in request:
        doc["schedulingPriority"] = checks.int_range(
            request["schedulingPriority"], 0, 9999, "schedulingPriority"
        )
    for key, check in (("retryStrategy", retry_strategy), ("timeout", timeout)):
        checked = check(request.get(key))
        if checked is not None:
            doc[key] = checked
    return doc
