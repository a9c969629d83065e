"""The AWS Batch REST API (restJson, ``POST /v1/<operation>``) as a powertools resolver."""

from .app import app

__all__ = ["app"]
