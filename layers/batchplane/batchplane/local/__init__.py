"""Local mode: the whole service on one machine (moto for AWS, processes for tasks)."""
