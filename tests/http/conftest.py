"""Fixtures shared by the HTTP tests."""

from __future__ import annotations

import pytest
import trustme


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority made for the tests of one module."""
    return trustme.CA()
