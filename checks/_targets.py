"""Skip, rather than fail, example checks whose targets this deployment does not configure.

The example suites ship with the agent (and its image); an environment that only sets the
``default`` target should not page about a CDN or a bucket it never asked to watch::

    require_targets(t, "cdn", "origin")   # skipped: set SYNTHETIC_TARGETS__CDN__BASE_URL ...

Your own suites usually should not do this: a missing target there is a configuration error,
and failing loudly is the point.
"""

from __future__ import annotations

from synthetic_exporter import T


def require_targets(t: T, *names: str) -> None:
    """Skip the test unless every named target is configured."""
    missing = [name for name in names if name not in t.targets]
    if missing:
        variables = ", ".join(f"SYNTHETIC_TARGETS__{name.upper()}__BASE_URL" for name in missing)
        t.skip(f"target(s) {', '.join(missing)} not configured (set {variables})")
