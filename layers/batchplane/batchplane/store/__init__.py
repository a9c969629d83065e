"""The one store: every entity lives in one table of items (see store/dynamodb.py for
the layout), behind one port with two adapters:

- ``DynamoStore``: DynamoDB, on AWS and in local mode with ``--store dynamodb`` (moto);
- ``SqliteStore``: local mode's embedded default, one SQLite file with the same items,
  indexes, conditions and a change stream in DynamoDB stream record shape.

The port, as the services use it (tests/contract holds both adapters to it):

- ``get(pk, sk)``, ``batch_get(keys)``: items or None / the ones that exist;
- ``put_new(item)`` (refused if it exists), ``replace(item)`` (compare-and-swap on
  ``version``), ``delete(pk, sk, expected_version=None)``: ConflictError on a failed
  condition, which wrote nothing;
- ``put_new_op``, ``replace_op``, ``add_op`` (counters, optionally bounded), ``check_op``
  (an attribute not in a set): entries for ``transact(ops)``, all or nothing. Entries are
  the adapter's own: pass them back only to the store that made them;
- ``query_index(gsi1pk, ...)``: one listing partition in ``gsi1sk`` order, paged with
  opaque tokens; ``query_partition(pk, sk_prefix)``: one item collection in ``sk`` order;
- ``counters(pk, sk)``: the counters of an item ``add_op`` writes.
"""

from .dynamodb import DynamoStore, Item
from .sqlite import SqliteStore

Store = DynamoStore | SqliteStore

__all__ = ["DynamoStore", "Item", "SqliteStore", "Store"]
