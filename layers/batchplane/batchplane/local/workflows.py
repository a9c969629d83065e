"""Step Functions in local mode: the state machines of template.yaml, created in moto and
executed for real by moto's ASL interpreter; their Lambda tasks reach the in-process
handlers through the front port (see stack.py, which answers Lambda Invoke)."""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

from moto.core.config import default_user_config

from ..config import settings

if TYPE_CHECKING:
    from .template import Template

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def function_arn(logical_id: str) -> str:
    s = settings()
    return f"arn:aws:lambda:{s.region}:{s.account_id}:function:{logical_id}"


def _resolve(value: Any) -> str:
    """The few intrinsics DefinitionSubstitutions use here: a function's ARN or name."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            logical_id = target.split(".")[0] if isinstance(target, str) else target[0]
            return function_arn(logical_id)
        if "Ref" in value:
            return str(value["Ref"])
    return str(value)


def create_state_machines(template: Template, sfn: Any, moto_port_env: Any) -> dict[str, str]:
    """Create every AWS::Serverless::StateMachine; returns logical id -> ARN. Turns on
    moto's ASL execution and points its Lambda tasks at ``moto_port_env``'s port."""
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    moto_port_env()
    s = settings()
    arns = {}
    for logical_id, res in template.resources.items():
        if res.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = res["Properties"]
        text = (template.root / props["DefinitionUri"]).read_text()
        subs = {k: _resolve(v) for k, v in (props.get("DefinitionSubstitutions") or {}).items()}
        definition = _SUBSTITUTION.sub(functools.partial(_substitute, subs), text)
        json.loads(definition)  # fail here, not in the interpreter, if a placeholder is left
        out = sfn.create_state_machine(
            name=logical_id, definition=definition, type=props.get("Type", "STANDARD"),
            roleArn=f"arn:aws:iam::{s.account_id}:role/{logical_id}Role",
        )
        arns[logical_id] = out["stateMachineArn"]
    return arns


def _substitute(subs: dict[str, str], match: re.Match[str]) -> str:
    """A ``${name}`` of a definition: its DefinitionSubstitutions value, else left as is."""
    return subs.get(match.group(1), match.group(0))
