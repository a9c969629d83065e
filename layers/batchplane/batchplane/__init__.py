"""batchplane: an AWS-Batch-compatible batch service.

The package is layered: ``domain`` is pure Python (models, validation, state rules,
the scheduling algorithm); ``service`` holds the use cases that drive the domain through
the ports; ``adapters`` talk to AWS (and to this machine in local mode); ``api`` is the
Batch REST API; ``local`` runs the whole service on one machine.
"""

__version__ = "0.1.0"
