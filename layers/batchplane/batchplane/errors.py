"""Errors the API maps to AWS Batch error shapes.

Every problem a caller can fix is a ``ClientException`` (HTTP 400) whose message says
what to change; ``ServerException`` (HTTP 500) is kept for faults of the service itself.
"""

from __future__ import annotations


class BatchError(Exception):
    """Base of the errors that cross the API boundary."""

    code = "ServerException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientException(BatchError):
    """The request is wrong: bad input, unknown resource, illegal state."""

    code = "ClientException"
    status = 400


class ServerException(BatchError):
    code = "ServerException"
    status = 500


class TooManyRequestsException(BatchError):
    code = "TooManyRequestsException"
    status = 429


class ConflictError(Exception):
    """A conditional write lost: somebody else changed the item first.

    Internal only; use cases decide whether that is a client error or a benign race.
    """


class AccessDeniedException(BatchError):
    """The caller may not act on this resource (a job queue's isolation, see
    domain.tenancy): HTTP 403, as IAM's denials are."""

    code = "AccessDeniedException"
    status = 403
