"""The dependency graph of suites: groups of connected suites, and dependency order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from synthetic_exporter.authoring.suite import Suite


def dependency_groups(suites: Mapping[str, Suite]) -> dict[str, str]:
    """Return, for every suite, a stable name for the dependency group it belongs to."""
    parent = {name: name for name in suites}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for name, suite in suites.items():
        for dep in suite.depends_on:
            if dep in parent:
                a, b = sorted((root(name), root(dep)))
                parent[b] = a
    return {name: root(name) for name in suites}


def with_dependencies(suites: Mapping[str, Suite], names: Iterable[str]) -> list[str]:
    """Return ``names`` plus everything they depend on, dependencies first."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dep in suites[name].depends_on:
            visit(dep)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered
