"""Settings read from the environment, the same way in Lambda and in local mode."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from .domain import roles


@dataclass(frozen=True)
class Settings:
    table_name: str
    region: str
    account_id: str
    event_bus_name: str
    event_source: str
    launcher: str
    job_retention_days: int
    # Role ARN patterns callers may name (domain/roles.py); unset in local mode: any.
    passable_roles: tuple[str, ...]

    @property
    def partition(self) -> str:
        return "aws-cn" if self.region.startswith("cn-") else "aws"


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = os.environ
    return Settings(
        table_name=env.get("BATCHPLANE_TABLE", "batchplane"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        account_id=env.get("BATCHPLANE_ACCOUNT_ID", "123456789012"),
        event_bus_name=env.get("BATCHPLANE_EVENT_BUS", "default"),
        event_source=env.get("BATCHPLANE_EVENT_SOURCE", "batchplane"),
        launcher=env.get("BATCHPLANE_LAUNCHER", "ecs"),
        job_retention_days=int(env.get("BATCHPLANE_JOB_RETENTION_DAYS", "30")),
        passable_roles=_passable_roles(env),
    )


def _passable_roles(env: os._Environ[str] | dict[str, str]) -> tuple[str, ...]:
    value = env.get("BATCHPLANE_PASSABLE_ROLES")
    if value is None:
        return roles.ANY if env.get("BATCHPLANE_LAUNCHER") == "local" else ()
    return roles.parse(value)
