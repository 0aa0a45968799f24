"""The typed demo API client (synthetic_exporter/demo/client) is what its script generates.

The client is generated code (``scripts/generate-demo-client.sh``, openapi-python-client) from
the demo's OpenAPI document; the payments example suite uses it (tests/test_examples.py).
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from synthetic_exporter.demo.openapi import openapi_json
from tests.conftest import ROOT

CLIENT = ROOT / "synthetic_exporter" / "demo" / "client"


def _tree(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def test_the_client_was_generated_from_the_current_document() -> None:
    """Cheap and independent of tool versions: the document beside the client is current."""
    kept = (CLIENT / "openapi.json").read_bytes()
    assert kept == openapi_json(), "run scripts/generate-demo-client.sh and commit"


@pytest.mark.slow
def test_the_client_is_up_to_date(tmp_path: Path) -> None:
    """``scripts/generate-demo-client.sh`` reproduces ``synthetic_exporter/demo/client`` exactly."""
    out = tmp_path / "client"
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "generate-demo-client.sh"), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert _tree(out) == _tree(CLIENT)
    _, mismatch, errors = filecmp.cmpfiles(CLIENT, out, _tree(out), shallow=False)
    assert (mismatch, errors) == ([], []), "run scripts/generate-demo-client.sh and commit"


def test_the_package_needs_attrs_only_through_the_demo_extra() -> None:
    """attrs is not a runtime dependency: only the ``demo`` extra (and ``dev``) brings it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("attrs") for dep in project["dependencies"])
    assert project["optional-dependencies"]["demo"] == ["attrs>=23.1"]
    assert any("demo" in dep for dep in project["optional-dependencies"]["dev"])
