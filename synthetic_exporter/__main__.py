"""``python -m synthetic_exporter``: the command line."""

from synthetic_exporter.app.cli import entry_point

entry_point()
