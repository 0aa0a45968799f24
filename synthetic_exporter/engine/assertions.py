"""Compile check files with pytest's assertion rewriting.

A failing plain ``assert`` then says what was compared (``assert 502 == 201`` and where each
value came from), as under pytest. A failed ``==`` on dicts, lists, sets, long strings or
dataclasses also carries pytest's explanation ("Differing items", a "Full diff"): see
:mod:`synthetic_exporter.engine._pytest_explain`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import CodeType


def compile_check_file(path: Path, source: bytes) -> CodeType:
    """Return the code of a check file, its ``assert`` statements rewritten."""
    from _pytest.assertion.rewrite import rewrite_asserts  # imported lazily: ~0.1 s

    from synthetic_exporter.engine._pytest_explain import install

    install()
    tree = ast.parse(source, filename=str(path))
    rewrite_asserts(tree, source, str(path), None)
    return compile(tree, str(path), "exec", dont_inherit=True)
