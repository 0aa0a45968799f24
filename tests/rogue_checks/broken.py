"""A check file that misbehaves on purpose (tests/test_reliability.py)."""

raise SystemExit("a check file that exits at import")
