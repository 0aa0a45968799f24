"""The docs say what the code does: every metric documented and real, the tutorial as shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, run_cli, write_checks
from tests.exposition import agent_registry

DOCS = ROOT / "docs"


def exported_families() -> set[str]:
    """Return the synthetic_ metric family names as the exposition writes them."""
    return {
        f"{m.name}_total" if m.type == "counter" else m.name
        for m in agent_registry().collect()
        if m.name.startswith("synthetic_")
    }


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
    # docs/cardinality.md is the plan for the next metric names, not a description of today's.
    for doc in sorted(d for d in DOCS.glob("*.md") if d.name != "cardinality.md"):
        unknown = {
            n
            for n in documented(doc)
            if n not in exported and not n.startswith("synthetic_exporter_")
        } - {n.removesuffix("_total") for n in exported}
        # Recording rules (level:metric:operation) are documented with their colons.
        assert not unknown, f"{doc.name} mentions {sorted(unknown)}, not exported"


def tutorial_check() -> str:
    """The check file docs/tutorial.md asks the reader to write."""
    text = (DOCS / "tutorial.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/tutorial.md should show one check file"
    return str(blocks[0])


@pytest.mark.slow
def test_tutorial_check_passes_then_fails_as_shown(demo_api: str, tmp_path: Path) -> None:
    """The tutorial's check passes against the demo API, and its broken form fails as shown."""
    source = tutorial_check()
    checks = write_checks(tmp_path / "my_checks", {"first.py": source})
    env = cli_env(tmp_path / "state", demo_api)
    passed = run_cli(["run", "--once", "--checks", str(checks)], env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "first/sign_up PASSED" in passed.stdout
    assert "1 passed" in passed.stdout

    broken = source.replace("== 201, r.text", "== 200, r.text")
    assert broken != source
    write_checks(checks, {"first.py": broken})
    failed = run_cli(["run", "--once", "--checks", str(checks)], env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "first/sign_up FAILED" in failed.stdout
    assert "assert 201 == 200" in failed.stdout
    assert "line 12, in sign_up" in failed.stdout
    assert "1 failed" in failed.stdout
    under_pytest = subprocess.run(
        [sys.executable, "-m", "pytest", "--synthetic", str(checks), "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert under_pytest.returncode == 1, under_pytest.stdout + under_pytest.stderr
    assert "FAILED my_checks/first.py::first::sign_up - {" in under_pytest.stdout
    assert "assert 201 == 200" in under_pytest.stdout
