"""Immutable result records: the only values that cross from the runner to its consumers.

Metrics, health, history, logs and the console reporter read these; none of them calls back
into the runner.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """How a test or suite ended."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    FLAKY = "flaky"

    @property
    def ok(self) -> bool:
        """Return whether this outcome counts as success (a flaky pass does, visibly)."""
        return self in (Outcome.PASSED, Outcome.FLAKY)

    @property
    def bad(self) -> bool:
        """Return whether this outcome is a failure of the system under test."""
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT)


# Most severe first: a suite takes the first of these that any of its tests has.
SEVERITY: tuple[Outcome, ...] = (
    Outcome.ERROR,
    Outcome.TIMEOUT,
    Outcome.FAILED,
    Outcome.FLAKY,
    Outcome.PASSED,
    Outcome.SKIPPED,
)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a test logged, with its offset in seconds from the test's start."""

    offset_seconds: float
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class StepResult:
    """A timed step inside a test (``async with t.step("name")``)."""

    name: str
    duration_seconds: float
    ok: bool


@dataclass(frozen=True, slots=True)
class CleanupFailure:
    """A cleanup or janitor call that raised or ran out of time."""

    name: str
    message: str


PHASES: tuple[str, ...] = ("resolve", "proxy", "connect", "tls", "processing", "transfer")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One HTTP request a test made through a target's client.

    ``phases`` holds the phases that happened, in seconds: on a reused connection there is no
    resolve, connect or tls. ``path`` never carries the query string; no headers are kept.
    ``started_at`` is the wall-clock start; ``span_id`` the W3C trace span of the request
    (16 hex digits, in the ``traceparent`` header it carried; empty when none was sent).
    ``remote_address`` is the IP address the connection that carried it went to, and
    ``ip_family`` its family (4 or 6); empty and ``None`` when unknown: through a proxy (which
    resolves the target), or when no connection was made.
    """

    target: str
    method: str
    path: str
    status: int | None
    duration_seconds: float
    phases: dict[str, float]
    cache: str = "none"
    pop: str = "none"
    tls_version: str = ""
    cert_not_after: float | None = None
    error: str = ""
    started_at: float = 0.0
    span_id: str = ""
    # IP family (issue 18): the address that answered.
    remote_address: str = ""
    ip_family: int | None = None


@dataclass(frozen=True, slots=True)
class StorageReport:
    """Object versions and delete markers a storage check counted under its prefix."""

    target: str
    object_versions: int
    delete_markers: int


PAGE_PHASES: tuple[str, ...] = (
    "dns",
    "connect",
    "tls",
    "ttfb",
    "download",
    "dom_content_loaded",
    "load",
)
"""Navigation timing of a page visit, in order (seconds from the navigation's start, per phase)."""
PAGE_VITALS: tuple[str, ...] = ("fcp", "lcp", "tbt")
"""Web Vitals a synthetic visit measures in seconds (CLS, unitless, has a field of its own)."""


ARTIFACTS_DIR = "artifacts"
"""Where test runs' files are kept, in the state directory: ``<run id>/<dir_of_test>/<name>``."""


def dir_of_test(test: str) -> str:
    """Return a test's directory name in its run's artifacts (``parent/sub`` -> ``parent__sub``)."""
    return test.replace("/", "__")


@dataclass(frozen=True, slots=True)
class AssetCount:
    """How many of a page's responses came from one edge location with one cache status."""

    target: str
    """The target whose host served them, or ``other`` (a third party)."""
    pop: str
    cache: str
    responses: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRecord:
    """One page a test visited in a browser (``t.page()``): where its time and bytes went.

    ``phases`` holds the navigation timing phases that happened (:data:`PAGE_PHASES`, seconds
    each), ``vitals`` the Web Vitals measured (:data:`PAGE_VITALS`, seconds); ``cls`` is the
    cumulative layout shift. ``requests`` and ``transfer_bytes`` count every response of the
    page (document, assets, XHR); ``assets`` their CDN cache status and edge. ``path`` never
    carries the query string.
    """

    target: str
    path: str
    status: int | None
    phases: dict[str, float]
    vitals: dict[str, float]
    cls: float | None = None
    requests: int = 0
    transfer_bytes: int = 0
    assets: tuple[AssetCount, ...] = ()
    error: str = ""
    started_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    """The result of one test (or subtest, named ``parent/sub``) in one suite run.

    ``duration_seconds`` is the monotonic time of the test function's last attempt only:
    it excludes the engine's set-up, retries' earlier attempts and cleanups.
    """

    __test__ = False  # not a pytest test class

    suite: str
    name: str
    outcome: Outcome
    duration_seconds: float
    started_at: float
    ended_at: float
    attempts: int = 1
    message: str = ""
    traceback: str = ""
    logs: tuple[LogLine, ...] = ()
    steps: tuple[StepResult, ...] = ()
    cleanup_failures: tuple[CleanupFailure, ...] = ()
    cleanup_seconds: float = 0.0
    requests: tuple[RequestRecord, ...] = ()
    storage: tuple[StorageReport, ...] = ()
    trace_id: str = ""
    """The W3C trace id (32 hex digits) of this test run's requests; empty when none was sent."""
    pages: tuple[PageRecord, ...] = ()
    """Pages the test visited in a browser."""
    artifacts: tuple[str, ...] = ()
    """Files kept for this test run (a failed browser test's ``screenshot.png``, ``trace.zip``),
    by name, in the run's artifact directory (``<state dir>/artifacts/<run id>/<test>/``)."""

    @property
    def full_name(self) -> str:
        """Return ``suite/test``."""
        return f"{self.suite}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteResult:
    """The result of one run of one suite.

    ``scheduled_at`` is when the scheduler meant the run to start and ``lag_seconds`` how late
    it woke up for it; waiting for dependencies is not lag.
    """

    suite: str
    run_id: str
    outcome: Outcome
    tests: tuple[TestResult, ...]
    started_at: float
    ended_at: float
    duration_seconds: float
    scheduled_at: float
    lag_seconds: float = 0.0
    skip_reason: str = ""
    janitor_failures: tuple[CleanupFailure, ...] = ()

    @property
    def failed_tests(self) -> tuple[TestResult, ...]:
        """Return the tests whose outcome is a failure."""
        return tuple(t for t in self.tests if t.outcome.bad)

    @property
    def cleanup_failure_count(self) -> int:
        """Return how many cleanups and janitor calls failed in this run."""
        return len(self.janitor_failures) + sum(len(t.cleanup_failures) for t in self.tests)


@dataclass(frozen=True, slots=True)
class LoadError:
    """A check file or suite that could not be loaded."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The suites of one on-demand run (``run --once`` or ``POST /api/v1/run``)."""

    run_id: str
    suites: tuple[SuiteResult, ...]
    started_at: float
    ended_at: float
    load_errors: tuple[LoadError, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Return whether nothing failed and nothing failed to load."""
        return not self.load_errors and not any(t.outcome.bad for t in self.all_tests)

    @property
    def all_tests(self) -> tuple[TestResult, ...]:
        """Return every test result of every suite, in run order."""
        return tuple(t for s in self.suites for t in s.tests)


def suite_outcome(tests: tuple[TestResult, ...]) -> Outcome:
    """Return a suite's outcome: the most severe of its tests' (skipped when it has none)."""
    present = {t.outcome for t in tests}
    return next((o for o in SEVERITY if o in present), Outcome.SKIPPED)


def to_jsonable(value: Any) -> Any:
    """Return a result record as plain JSON-ready data (dicts, lists, str, numbers)."""
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        data = {name: to_jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
        for prop in ("full_name",):
            if hasattr(value, prop):
                data[prop] = getattr(value, prop)
        return data
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value
