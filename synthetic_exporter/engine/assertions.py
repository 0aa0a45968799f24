"""Compile check files, and the helper modules beside them, with pytest's assertion rewriting.

A failing plain ``assert`` then says what was compared (``assert 502 == 201`` and where each
value came from), as under pytest. A failed ``==`` on dicts, lists, sets, long strings or
dataclasses also carries pytest's explanation ("Differing items", a "Full diff"): see
:mod:`synthetic_exporter.engine._pytest_explain`. The same holds in a module a check file
imports from the checks directory (``from _customers import sign_up``): see
:func:`import_helpers_from`.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import CodeType, ModuleType


def compile_check_file(path: Path, source: bytes) -> CodeType:
    """Return the code of a check file, its ``assert`` statements rewritten."""
    from _pytest.assertion.rewrite import rewrite_asserts  # imported lazily: ~0.1 s

    from synthetic_exporter.engine._pytest_explain import install

    install()
    tree = ast.parse(source, filename=str(path))
    rewrite_asserts(tree, source, str(path), None)
    return compile(tree, str(path), "exec", dont_inherit=True)


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    """Loads a helper module from source, its asserts rewritten (no bytecode cache is read)."""

    def get_code(self, fullname: str) -> CodeType:
        """Return the module's code, compiled as a check file is."""
        path = self.get_filename(fullname)
        return compile_check_file(Path(path), self.get_data(path))


class _HelperFinder(importlib.abc.MetaPathFinder):
    """Finds the modules under one directory, to be loaded by :class:`_RewritingLoader`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Return the spec of a module found in the directory (or a package of it), else None."""
        search = [str(self.directory)] if path is None else list(path)
        if not any(Path(p).resolve().is_relative_to(self.directory) for p in search):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, search)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None
        spec.loader = _RewritingLoader(fullname, spec.origin)
        return spec


def import_helpers_from(directory: Path) -> None:
    """Make the modules in ``directory`` importable by check files, their asserts rewritten.

    The directory goes first on ``sys.path`` (``from _models import parse``); a finder first on
    ``sys.meta_path`` compiles what it finds there as check files are compiled, so that an
    ``assert`` in a shared helper explains itself too.
    """
    sys.path.insert(0, str(directory))
    if not any(
        isinstance(f, _HelperFinder) and f.directory == directory.resolve() for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _HelperFinder(directory))
