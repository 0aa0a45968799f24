"""The public authoring API stays exactly this."""

from __future__ import annotations

import synthetic_exporter


def test_exported_names() -> None:
    assert sorted(synthetic_exporter.__all__) == [
        "JanitorContext",
        "Orphan",
        "Resource",
        "Suite",
        "T",
        "__version__",
    ]


def test_importing_the_package_configures_no_logging() -> None:
    import subprocess
    import sys

    code = (
        "from loguru import logger\n"
        "handlers = dict(logger._core.handlers)\n"
        "import synthetic_exporter\n"
        "assert dict(logger._core.handlers) == handlers\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
