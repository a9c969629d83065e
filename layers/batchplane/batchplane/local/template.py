"""Reads template.yaml so that local mode creates what the deployment declares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub ...)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Template:
    root: Path
    resources: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Template:
        doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
        return cls(root=path.parent, resources=doc.get("Resources", {}))

    def table(self, logical_id: str = "Table") -> dict[str, Any]:
        return self.resources[logical_id]["Properties"]

    def functions(self) -> dict[str, FunctionSpec]:
        out = {}
        for lid, res in self.resources.items():
            if res.get("Type") != "AWS::Serverless::Function":
                continue
            props = res.get("Properties", {})
            out[lid] = FunctionSpec(
                logical_id=lid,
                code_uri=self.root / props["CodeUri"],
                handler=props.get("Handler", "app.lambda_handler"),
                events=props.get("Events", {}) or {},
            )
        return out


def find_template(start: Path | None = None) -> Path:
    """template.yaml of this checkout (local mode runs from the source tree)."""
    here = Path(__file__).resolve()
    candidates = [start] if start else []
    candidates += [Path.cwd(), *here.parents]
    for base in candidates:
        if base and (base / "template.yaml").is_file() and (base / "functions").is_dir():
            return base / "template.yaml"
    raise FileNotFoundError(
        "template.yaml not found: run batchplane from its checkout (pip install -e .)"
    )
