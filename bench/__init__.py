"""batchplane's benchmarks and cost meter: ``python -m bench [--quick]``.

Every run prints one table and writes the same figures to ``bench/results/latest.json``.
What each figure means, and how far to trust it on a shared machine, is in
``docs/benchmarks.md``.
"""
