"""Consumers of results: metrics, ``/healthz``, run history, reports and the failure log.

Prometheus metrics and their exposition, ``/healthz``, run history, ``run --once`` reports and
the failure log. Reads result records (:mod:`synthetic_exporter.core`) and loaded suites; never
the engine. Internal.
"""
