"""What the status page costs to build: 200 suites of 5 tests, 30 stored runs each.

Run ``python -m benchmarks.status_page``. The run store's reads are measured separately
(docs/architecture.md, the run history); this is the page model and the templates, which run in
a worker thread. Prints the median of a few rounds for each part and the page's size.
"""

from __future__ import annotations

import gzip
import statistics
import time
from collections.abc import Callable

from synthetic_exporter.app.page_model import StoredHistory, index_page, run_page
from synthetic_exporter.app.pages import GZIP_LEVEL
from synthetic_exporter.app.rendering import render
from synthetic_exporter.core.results import Outcome, RequestRecord, to_jsonable
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.run_store import TestRun
from tests.factories import make_suite, make_test

SUITES, TESTS, RUNS = 200, 5, 30


def median_ms(work: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    now = time.time()
    names = [f"suite{i:03}" for i in range(SUITES)]
    results = [
        make_suite(
            name,
            *(
                (f"test{j}", Outcome.FAILED if i % 50 == 0 and j == 0 else Outcome.PASSED)
                for j in range(TESTS)
            ),
            at=now,
            message="assert 503 == 201\n+  where 503 = <Response [503]>.status_code",
        )
        for i, name in enumerate(names)
    ]
    health = Health(intervals=dict.fromkeys(names, 60.0), started_at=now - 60)
    for result in results:
        health.suite_finished(result)
    body = health.report(now)[1]
    latest = [to_jsonable(r) for r in results]
    stored = StoredHistory(
        recent={
            (name, f"test{j}"): [
                TestRun(f"r{k}", name, f"test{j}", "passed", now - 60 * k, 0.05 + k / 1000, "")
                for k in range(RUNS)
            ]
            for name in names
            for j in range(TESTS)
        },
        uptime_day={(name, f"test{j}"): 0.99 for name in names for j in range(TESTS)},
        uptime_week={(name, f"test{j}"): 0.999 for name in names for j in range(TESTS)},
    )

    def model() -> object:
        return index_page(health=body, latest=latest, stored=stored, environment="e", now=now)

    page = model()
    html = render("index.html", page=page, environment="e", live_url="/?fragment=1")
    print(f"index model: {median_ms(model):.1f} ms")

    def whole() -> str:
        return render("index.html", page=page, environment="e", live_url="/?fragment=1")

    def fragment() -> str:
        return render("index_main.html", page=page, environment="e")

    print(f"index page render: {median_ms(whole):.1f} ms")
    print(f"index fragment render: {median_ms(fragment):.1f} ms")
    encoded = html.encode()
    print(f"index page size: {len(encoded) / 1024:.0f} KiB")
    packed = gzip.compress(encoded, GZIP_LEVEL)
    print(
        f"gzip level {GZIP_LEVEL}: {median_ms(lambda: gzip.compress(encoded, GZIP_LEVEL)):.1f} ms,"
        f" {len(packed) / 1024:.0f} KiB"
    )

    requests = tuple(
        RequestRecord(
            target="default",
            method="GET",
            path=f"/items/{k}",
            status=200,
            duration_seconds=0.02,
            phases={"processing": 0.015, "transfer": 0.005},
            started_at=now - 2 + k * 0.03,
        )
        for k in range(50)
    )
    test = make_test("s", "t", Outcome.PASSED, at=now, duration=2.0)
    run = to_jsonable(make_suite("s", ("t", Outcome.PASSED), at=now))
    run["tests"] = [to_jsonable(test) | {"requests": [to_jsonable(r) for r in requests]}]

    def run_html() -> str:
        return render("run.html", page=run_page(run, now), environment="e")

    print(f"run page with 50 requests: {median_ms(run_html):.1f} ms")


if __name__ == "__main__":
    main()
