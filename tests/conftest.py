"""Settings for the whole suite."""

from hypothesis import settings

# This machine (and CI's) is shared and noisy: hypothesis's per-example deadline (200 ms)
# turns a slow moment into a "flaky" failure. The tests check behaviour, not speed.
settings.register_profile("batchplane", deadline=None)
settings.load_profile("batchplane")
