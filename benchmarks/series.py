"""Series and bytes per check: what one check adds to a scrape, against one blackbox probe.

Agent: real ``serve`` processes over generated suites of one kind (a test making one HTTP
request, a test making five, a test making one HTTPS request), run with 1 and with
``1 + plan.series_suites`` suites; per check = the difference of their ``/metrics``, divided by
the suites added. Every suite's check connects afresh (``FRESH_CONNECTIONS=true``), so every
check records every phase of a new connection, as a lone check's first run does at default
settings (on the shared pool a check records ``connect`` once its connection is new, and the
phase's series then stay). Excluded: the agent's own families (``synthetic_exporter_*``,
``process_*``, ``python_*``), which do not grow with checks. Bytes: text format, uncompressed
and gzip at the agent's level. Blackbox: one ``/probe`` response (HTTP and HTTPS modules),
every sample in it.
"""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass, field

from benchmarks.blackbox import HTTP, HTTPS
from benchmarks.lab import Lab
from benchmarks.serve_proc import serving
from synthetic_exporter.exporter.exposition_cache import GZIP_LEVEL

OWN_FAMILIES = (b"synthetic_exporter_", b"process_", b"python_")
CHECKS = '''\
"""{n} generated suites for the series benchmark: one test making {requests} request(s)."""

from synthetic_exporter import Suite, T


def _make(i: int) -> Suite:
    suite = Suite(f"s{{i:05d}}")

    @suite.test
    async def check(t: T) -> None:
        for _ in range({requests}):
            response = await t.http.get("/delay/0")
            assert response.status_code == 200

    return suite


for _i in range({n}):
    globals()[f"suite_{{_i:05d}}"] = _make(_i)
'''
ONE = "one request"
FIVE = "five requests"
ONE_HTTPS = "one HTTPS request"
KINDS = {ONE: (1, False), FIVE: (5, False), ONE_HTTPS: (1, True)}


@dataclass(frozen=True, slots=True)
class Footprint:
    """What one check (or one probe) adds to a scrape."""

    series: float
    bytes: float
    gzip_bytes: float


@dataclass
class Series:
    """Per check of each agent kind, and per blackbox probe (``http_2xx``, ``http_2xx_tls``)."""

    agent: dict[str, Footprint] = field(default_factory=dict)
    alone: dict[str, Footprint] = field(default_factory=dict)  # a one-suite agent's whole scrape
    blackbox: dict[str, Footprint] = field(default_factory=dict)
    families: dict[str, dict[str, float]] = field(default_factory=dict)
    suites_added: int = 0


def _family(line: bytes) -> bytes:
    """Return the metric name a sample or ``# HELP``/``# TYPE`` line is about."""
    if line.startswith(b"# "):
        parts = line.split(b" ", 3)
        return parts[2] if len(parts) > 2 else b""
    return line.split(b"{", 1)[0].split(b" ", 1)[0]


def without_own(body: bytes) -> bytes:
    """Return the exposition without the agent's own families (:data:`OWN_FAMILIES`)."""
    lines = body.splitlines(keepends=True)
    return b"".join(line for line in lines if not _family(line).startswith(OWN_FAMILIES))


def samples(body: bytes) -> int:
    """Return the number of samples (series) in a text exposition."""
    return sum(1 for line in body.splitlines() if line.strip() and not line.startswith(b"#"))


def footprint(body: bytes) -> Footprint:
    """Return the series and bytes of a whole exposition (a blackbox probe)."""
    return Footprint(samples(body), len(body), len(gzip.compress(body, GZIP_LEVEL)))


def by_family(fewer: bytes, more: bytes, added: int) -> dict[str, float]:
    """Return the series each of ``added`` checks adds, by family (histogram samples under
    their family's name), the agent's own families excluded."""
    counts: dict[str, float] = {}
    for body, sign in ((without_own(more), 1), (without_own(fewer), -1)):
        for line in body.splitlines():
            if line.strip() and not line.startswith(b"#"):
                name = _family(line).decode()
                for suffix in ("_bucket", "_sum", "_count"):
                    name = name.removesuffix(suffix)
                counts[name] = counts.get(name, 0) + sign / added
    return dict(sorted(((n, c) for n, c in counts.items() if c), key=lambda item: -item[1]))


def per_check(fewer: bytes, more: bytes, added: int) -> Footprint:
    """Return what each of ``added`` checks adds, from the scrapes with fewer and more of them
    (the agent's own families excluded)."""
    small, large = footprint(without_own(fewer)), footprint(without_own(more))
    return Footprint(
        (large.series - small.series) / added,
        (large.bytes - small.bytes) / added,
        (large.gzip_bytes - small.gzip_bytes) / added,
    )


async def _scrape(lab: Lab, kind: str, suites: int) -> bytes:
    requests, https = KINDS[kind]
    env = {"SYNTHETIC_TARGETS__DEFAULT__FRESH_CONNECTIONS": "true"}
    if https:
        env["SYNTHETIC_TARGETS__DEFAULT__CA_BUNDLE"] = str(lab.tls.ca)
    home = lab.workdir / f"series-{kind.replace(' ', '-')}-{suites}"
    source = CHECKS.format(n=suites, requests=requests)
    url = lab.tls_url if https else lab.target.url
    async with serving(home, source, url, env) as agent:
        return await agent.metrics()


async def measure_series(lab: Lab) -> Series:
    """Measure series and bytes per check of every kind, and per blackbox probe."""
    added = lab.plan.series_suites
    result = Series(suites_added=added)
    bodies = await asyncio.gather(
        *(_scrape(lab, kind, n) for kind in KINDS for n in (1, 1 + added))
    )
    for i, kind in enumerate(KINDS):
        fewer, more = bodies[2 * i], bodies[2 * i + 1]
        result.agent[kind] = per_check(fewer, more, added)
        result.alone[kind] = footprint(without_own(fewer))
        result.families[kind] = by_family(fewer, more, added)
    connection = lab.blackbox.connection()
    try:
        for module, base in ((HTTP, lab.target.url), (HTTPS, lab.tls_url)):
            body = await lab.blackbox.probe_body(connection, f"{base}/delay/0", module)
            result.blackbox[module] = footprint(body)
    finally:
        await connection.close()
    return result
