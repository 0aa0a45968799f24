"""The docs say what the code does: every metric documented, every documented metric real."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from synthetic_exporter import Suite, T
from synthetic_exporter.metrics import Metrics
from synthetic_exporter.results import Outcome
from tests.conftest import ROOT
from tests.factories import make_suite

DOCS = ROOT / "docs"


def exported_families() -> set[str]:
    """Return the synthetic_ metric family names the agent exports."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, {"environment": "docs"}, "0")
    suite = Suite("signup")

    @suite.test
    async def create(t: T) -> None: ...

    metrics.suites_loaded({"signup": suite}, 0, 60)
    metrics.suite_finished(make_suite("signup", ("create", Outcome.PASSED)))
    names = {m.name for m in registry.collect() if m.name.startswith("synthetic_")}
    # Counters are named without _total in the registry; the exposition adds it.
    return {f"{n}_total" if m_type == "counter" else n for n, m_type in _types(registry, names)}


def _types(registry: CollectorRegistry, names: set[str]) -> set[tuple[str, str]]:
    return {(m.name, m.type) for m in registry.collect() if m.name in names}


def documented(path: Path) -> set[str]:
    """Return the synthetic_ names a doc mentions, reduced to family names."""
    # Not the middle of a recording rule's name (level:metric:operation).
    names = set(re.findall(r"(?<![:\w])synthetic_[a-z0-9_]+(?![:\w])", path.read_text()))
    families = set()
    for name in names:
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
        families.add(name)
    # The package's own name, and prefixes such as synthetic_http_* in prose.
    return {n for n in families if n != "synthetic_exporter" and not n.endswith("_")}


def test_every_exported_metric_is_documented() -> None:
    missing = exported_families() - documented(DOCS / "metrics.md")
    assert not missing, f"docs/metrics.md does not describe {sorted(missing)}"


def test_docs_mention_no_metric_the_agent_does_not_export() -> None:
    exported = exported_families()
    for doc in sorted(DOCS.glob("*.md")):
        unknown = {
            n
            for n in documented(doc)
            if n not in exported and not n.startswith("synthetic_exporter_")
        } - {n.removesuffix("_total") for n in exported}
        # Recording rules (level:metric:operation) are documented with their colons.
        assert not unknown, f"{doc.name} mentions {sorted(unknown)}, not exported"
