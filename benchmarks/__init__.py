"""Benchmarks of synthetic-exporter against the Prometheus blackbox_exporter (issue 7).

Run ``make bench`` (or ``python -m benchmarks``); ``--quick`` checks the harness end to end in
seconds. See docs/performance.md for the figures of one full run and what they mean.
"""
