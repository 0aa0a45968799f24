"""The timing vocabulary: certificate times read as the ssl module reads them."""

from __future__ import annotations

import ssl

import pytest

from synthetic_exporter.http.timing import cert_time


@pytest.mark.parametrize(
    "text",
    [
        "Jun  1 12:00:00 2027 GMT",
        "Dec 31 23:59:59 9999 GMT",
        "Feb 29 00:00:05 2028 GMT",
        "Jan 10 07:08:09 1999 GMT",
    ],
)
def test_cert_time_is_what_the_ssl_module_reads(text: str) -> None:
    assert cert_time(text) == ssl.cert_time_to_seconds(text)


def test_other_spellings_are_left_to_the_ssl_module() -> None:
    with pytest.raises(ValueError, match="time data"):
        cert_time("2027-06-01T12:00:00Z")
