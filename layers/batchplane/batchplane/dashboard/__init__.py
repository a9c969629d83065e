"""The web dashboard (issue 14): queues, compute environments, jobs, a job's attempts,
log and cost, an array's progress, a dependency graph. Server-rendered HTML from the
public Batch API and CloudWatch Logs, refreshed in place by htmx (static/htmx.min.js,
htmx 2.0.11, vendored as one file, 0BSD licence). ``local up`` serves it at /dashboard/
on its front port; ``batchplane dashboard`` serves it for any endpoint."""

from .app import PREFIX, Dashboard

__all__ = ["PREFIX", "Dashboard"]
