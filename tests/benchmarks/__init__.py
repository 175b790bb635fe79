"""Benchmarks (``make bench``): each writes JSON results under ``<LOCAL_STATE_DIR>/bench/``."""
