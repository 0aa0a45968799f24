"""synthetic-exporter: end-to-end checks written like pytest tests, exported to Prometheus.

Write checks like pytest tests; the agent runs them on an interval and exports the results
as Prometheus metrics.

The authoring API is all this package exports::

    from synthetic_exporter import Suite, T
"""

from __future__ import annotations

from synthetic_exporter.authoring.context import T
from synthetic_exporter.authoring.janitor import JanitorContext, Orphan, Resource
from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.version import __version__

__all__ = ["JanitorContext", "Orphan", "Resource", "Suite", "T", "__version__"]
