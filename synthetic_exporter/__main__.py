"""``python -m synthetic_exporter``: the command line."""

from synthetic_exporter.cli import entry_point

entry_point()
