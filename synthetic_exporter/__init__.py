"""synthetic-exporter: write end-to-end checks like pytest tests, run them on an interval,
export the results as Prometheus metrics.

The authoring API is all this package exports::

    from synthetic_exporter import Suite, T
"""

from __future__ import annotations

__version__ = "0.1.0"

from synthetic_exporter.context import T
from synthetic_exporter.janitor import JanitorContext, Resource
from synthetic_exporter.orphans import Orphan
from synthetic_exporter.suite import Suite

__all__ = ["JanitorContext", "Orphan", "Resource", "Suite", "T", "__version__"]
