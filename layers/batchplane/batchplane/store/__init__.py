"""The one store: every entity lives in a single DynamoDB table (see docs/store.md)."""

from .dynamodb import DynamoStore, Item

__all__ = ["DynamoStore", "Item"]
