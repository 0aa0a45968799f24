"""The human status page at ``/``: every suite and test, failures first, refreshed every 15 s."""

from __future__ import annotations

import time
from html import escape
from typing import Any

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1d1d1f}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
.pass,.passed,.flaky{color:#137333}.fail,.failed,.error,.timeout,.stale{color:#b3261e}
.pending,.skipped{color:#8a6d00}.badge{font-weight:600;text-transform:uppercase}
pre{white-space:pre-wrap;margin:0;font-size:12px}nav a{margin-right:1rem}
"""


def _ago(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "never"
    seconds = max(now - timestamp, 0)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _test_rows(suite: dict[str, Any], now: float) -> str:
    rows = []
    for test in suite["tests"]:
        outcome = escape(test["outcome"])
        message = f"<pre>{escape(test['message'])}</pre>" if test["message"] else ""
        rows.append(
            f"<tr><td>{escape(test['full_name'])}</td>"
            f"<td class='badge {outcome}'>{outcome}</td>"
            f"<td>{test['duration_seconds'] * 1000:.0f} ms</td>"
            f"<td>{_ago(test['ended_at'], now)}</td><td>{message}</td></tr>"
        )
    return "".join(rows)


def render_status_page(health: dict[str, Any], results: dict[str, Any], environment: str) -> str:
    """Return the page's HTML from the ``/healthz`` body and the latest results."""
    now = time.time()
    status = escape(health["status"])
    suite_rows = "".join(
        f"<tr><td>{escape(name)}</td><td class='badge {escape(s)}'>{escape(s)}</td></tr>"
        for name, s in sorted(health["suites"].items())
    )
    suites = sorted(
        results["suites"], key=lambda s: (s["outcome"] in ("passed", "flaky"), s["suite"])
    )
    test_rows = "".join(_test_rows(suite, now) for suite in suites)
    errors = "".join(f"<li><code>{escape(e)}</code></li>" for e in health["load_errors"])
    load_errors = f"<h2>Load errors</h2><ul>{errors}</ul>" if errors else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
<title>synthetic-exporter: {status}</title><style>{STYLE}</style></head><body>
<h1>synthetic-exporter <small>({escape(environment)})</small>:
<span class="badge {status}">{status}</span></h1>
<nav><a href="/metrics">/metrics</a><a href="/healthz">/healthz</a>
<a href="/api/v1/results">/api/v1/results</a><a href="/api/v1/runs">/api/v1/runs</a></nav>
<h2>Suites</h2><table><tr><th>suite</th><th>status</th></tr>{suite_rows}</table>
<h2>Tests</h2><table><tr><th>test</th><th>result</th><th>duration</th><th>last run</th>
<th>message</th></tr>{test_rows}</table>{load_errors}
</body></html>
"""
