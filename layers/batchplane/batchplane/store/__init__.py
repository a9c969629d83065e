"""The one store: every entity lives in one table of items (see store/dynamodb.py for
the layout), behind one port with two adapters:

- ``DynamoStore``: DynamoDB, on AWS and in local mode with ``--store dynamodb`` (moto);
- ``SqliteStore``: local mode's embedded default, one SQLite file with the same items,
  indexes, conditions and a change stream in DynamoDB stream record shape. It is
  imported from ``store.sqlite``, not here: the Lambda layer does not ship local mode's
  dependencies (orjson).

The port, as the repositories use it (tests/contract holds both adapters to it):

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

The services never build a key: they go through the repositories, named in the Batch
vocabulary, which own the layout of their items and work on either adapter:

- ``JobStore`` (jobs, their listings by queue and status) and ``ArrayCounters`` (array
  parents' child counts);
- ``ComputeEnvironments``, ``JobQueues``, ``SchedulingPolicies``, ``JobDefinitions``;
- ``UsageCounters`` (the vCPUs a compute environment's attempts hold),
  ``DependencyEdges``, ``SubmitKeys`` (SubmitJob retries), ``Shares`` (fair-share usage);
- ``TriggerStore``, ``ScheduleStore``.

A service still passes the entries a repository hands it to ``transact`` and
compare-and-swaps an ``Item`` it read with ``replace``: those take no key.
"""

from .arrays import ArrayCounters
from .dependencies import DependencyEdges
from .dynamodb import DynamoStore, Item
from .jobs import JobStore
from .port import Store
from .resources import ComputeEnvironments, JobDefinitions, JobQueues, SchedulingPolicies
from .shares import Shares
from .submit_keys import SubmitKeys
from .triggers import ScheduleStore, TriggerStore
from .usage import UsageCounters

__all__ = [
    "ArrayCounters",
    "ComputeEnvironments",
    "DependencyEdges",
    "DynamoStore",
    "Item",
    "JobDefinitions",
    "JobQueues",
    "JobStore",
    "ScheduleStore",
    "SchedulingPolicies",
    "Shares",
    "Store",
    "SubmitKeys",
    "TriggerStore",
    "UsageCounters",
]
