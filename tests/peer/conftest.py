# moto's Batch tests under moto_batch/ run against a live stack through run_moto_batch.py
# (and test_moto_batch.py), never in this process's collection.
collect_ignore = ["moto_batch"]
