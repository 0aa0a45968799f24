"""Optional OpenTelemetry export (OTLP over HTTP) of the checks' spans.

Each test run that did not skip becomes one trace: a root span ``suite/test`` and a CLIENT span
per HTTP request, whose span id is the one the request carried in its ``traceparent`` header, so
the target's own server spans hang under it. Spans are built from the finished results (the ids
come from them), not from a live tracer, and are exported from one background thread through a
bounded queue: the event loop never waits for the collector; when the collector is slow or down,
spans are dropped, counted and warned about once per outage.

OpenTelemetry is the ``[otlp]`` extra, imported only by :func:`otlp_listener`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from loguru import logger

from synthetic_exporter.core.results import Outcome, RequestRecord, SuiteResult, TestResult
from synthetic_exporter.core.version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, Status

    from synthetic_exporter.core.settings import Settings

__all__ = ["OtlpExporter", "SpanBuilder", "otlp_listener"]

SERVICE_NAME: Final = "synthetic-exporter"
QUEUE_SUITES: Final = 512
"""Suite results waiting for export at most; more are dropped (and counted)."""
BATCH_SUITES: Final = 64
"""Suite results exported in one OTLP request at most."""
EXPORT_TIMEOUT_SECONDS: Final = 5.0
"""One export's time limit, the SDK's retries included."""


def _wall_ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _random_id(bits: int) -> int:
    while True:
        value = int.from_bytes(os.urandom(bits // 8), "big")
        if value:
            return value


def _hex_id(text: str, digits: int) -> int:
    """Return a W3C id given as ``digits`` hex digits, or a random one when it is not."""
    if len(text) == digits:
        try:
            value = int(text, 16)
        except ValueError:
            value = 0
        if value:
            return value
    return _random_id(digits * 4)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def request_error_type(record: RequestRecord) -> str:
    """Return a request's ``error.type``: the exception's class, the status code, or ''."""
    if record.error:
        return record.error.split(":", 1)[0].strip()
    if record.status is not None and record.status >= 400:
        return str(record.status)
    return ""


def span_count(suite: SuiteResult) -> int:
    """Return how many spans a suite run makes: a root per test that ran, one per request."""
    return sum(1 + len(t.requests) for t in suite.tests if t.outcome is not Outcome.SKIPPED)


@dataclass(frozen=True, slots=True)
class SpanBuilder:
    """Turns suite results into OpenTelemetry spans (``ReadableSpan``s with explicit ids).

    ``servers`` maps a target's name to the host and port of its base URL (``server.address``).
    """

    resource: Resource
    servers: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)

    def spans(self, suite: SuiteResult) -> list[ReadableSpan]:
        """Return the spans of a suite run's tests; skipped tests have none.

        A subtest (``parent/sub``) shares its test's trace, and its root span is a child of the
        test's root span.
        """
        ran = [t for t in suite.tests if t.outcome is not Outcome.SKIPPED]
        roots = {t.name: self._context(_hex_id(t.trace_id, 32), _random_id(64)) for t in ran}
        spans: list[ReadableSpan] = []
        for test in ran:
            parent = roots.get(test.name.rpartition("/")[0]) if "/" in test.name else None
            root = roots[test.name]
            if parent is not None and parent.trace_id == root.trace_id:
                spans.extend(self.test_spans(test, suite.run_id, root, parent))
            else:
                spans.extend(self.test_spans(test, suite.run_id, root))
        return spans

    def test_spans(
        self,
        test: TestResult,
        run_id: str,
        root: SpanContext | None = None,
        parent: SpanContext | None = None,
    ) -> list[ReadableSpan]:
        """Return a test run's root span followed by one CLIENT span per request.

        ``root`` is the root span's context (new ids when None), ``parent`` its parent's.
        """
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanKind

        if root is None:
            root = self._context(_hex_id(test.trace_id, 32), _random_id(64))
        attributes: dict[str, str | int] = {
            "synthetic.suite": test.suite,
            "synthetic.test": test.name,
            "synthetic.outcome": test.outcome.value,
            "synthetic.run_id": run_id,
            "synthetic.attempts": test.attempts,
        }
        if test.outcome.bad:
            attributes["error.type"] = test.outcome.value
        spans = [
            ReadableSpan(
                name=test.full_name,
                context=root,
                parent=parent,
                kind=SpanKind.INTERNAL,
                resource=self.resource,
                attributes=attributes,
                status=self._test_status(test),
                start_time=_wall_ns(test.started_at),
                end_time=_wall_ns(max(test.ended_at, test.started_at)),
                instrumentation_scope=_scope(),
            )
        ]
        spans.extend(self._request_span(r, root, test.started_at) for r in test.requests)
        return spans

    def _request_span(
        self, record: RequestRecord, parent: SpanContext, test_start: float
    ) -> ReadableSpan:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start = _wall_ns(record.started_at or test_start)
        attributes: dict[str, str | int | float] = {
            "http.request.method": record.method,
            "url.path": record.path,
            "synthetic.target": record.target,
            "synthetic.cache": record.cache,
            "synthetic.pop": record.pop,
        }
        host, port = self.servers.get(record.target, ("", None))
        if host:
            attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
        if record.remote_address:
            attributes["network.peer.address"] = record.remote_address
        if record.ip_family is not None:
            attributes["network.type"] = f"ipv{record.ip_family}"
        if record.status is not None:
            attributes["http.response.status_code"] = record.status
        for phase, seconds in record.phases.items():
            attributes[f"synthetic.phase.{phase}.duration"] = seconds
        error_type = request_error_type(record)
        status = Status(StatusCode.UNSET)
        if error_type:
            attributes["error.type"] = error_type
            status = Status(StatusCode.ERROR, error_type)
        return ReadableSpan(
            name=record.method,
            context=self._context(parent.trace_id, _hex_id(record.span_id, 16)),
            parent=parent,
            kind=SpanKind.CLIENT,
            resource=self.resource,
            attributes=attributes,
            status=status,
            start_time=start,
            end_time=start + _wall_ns(max(record.duration_seconds, 0.0)),
            instrumentation_scope=_scope(),
        )

    @staticmethod
    def _context(trace_id: int, span_id: int) -> SpanContext:
        from opentelemetry.trace import SpanContext, TraceFlags

        return SpanContext(
            trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )

    @staticmethod
    def _test_status(test: TestResult) -> Status:
        from opentelemetry.trace import Status, StatusCode

        if test.outcome.bad:
            return Status(StatusCode.ERROR, _first_line(test.message) or test.outcome.value)
        return Status(StatusCode.OK) if test.outcome.ok else Status(StatusCode.UNSET)


def _scope() -> InstrumentationScope:
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    return InstrumentationScope("synthetic_exporter", __version__)


_STOP: Final = object()


class _SdkLogs(logging.Handler):
    """Keeps the SDK's own log messages out of stderr: the last one explains a failed export."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = _first_line(record.getMessage())
        logger.debug(f"opentelemetry: {self.last}")


class OtlpExporter:
    """A result listener exporting each suite run's spans from a background thread.

    ``suite_finished`` only queues the (immutable) result; the thread builds the spans and sends
    them in batches. A full queue or a failed export drops spans: ``dropped_spans`` counts them,
    and a WARNING is logged when an outage starts (and an INFO line when it ends).
    """

    def __init__(
        self,
        builder: SpanBuilder,
        exporter: SpanExporter,
        *,
        endpoint: str = "",
        queue_size: int = QUEUE_SUITES,
    ) -> None:
        self.builder = builder
        self.endpoint = endpoint
        self.exported_spans = 0
        self.dropped_spans = 0
        self._count_lock = threading.Lock()
        self._exporter = exporter
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._queue_full = False
        self._failing = False
        self._sdk_logs = _SdkLogs()
        sdk_logger = logging.getLogger("opentelemetry")
        sdk_logger.addHandler(self._sdk_logs)
        sdk_logger.propagate = False
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)
        self._thread.start()

    def test_finished(self, result: TestResult) -> None:
        """Do nothing: spans are sent per suite run, which knows the run id."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Queue the run for export, or count its spans as dropped when the queue is full."""
        if self._closed or not span_count(result):
            return
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            self._drop(span_count(result))
            if not self._queue_full:
                self._queue_full = True
                logger.warning(
                    f"OTLP export to {self.endpoint} is behind ({self._queue.maxsize} suite runs "
                    "wait): spans of new runs are dropped until it catches up"
                )
        else:
            self._queue_full = False

    def close(self, timeout: float = EXPORT_TIMEOUT_SECONDS) -> None:
        """Send what is queued (within ``timeout`` seconds), then stop the thread and exporter."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._exporter.shutdown()  # aborts a retry in progress; later exports fail at once
        self._thread.join(1.0)
        logging.getLogger("opentelemetry").removeHandler(self._sdk_logs)
        if self.dropped_spans:
            logger.warning(f"OTLP export: {self.dropped_spans} spans were dropped in all")

    def _drop(self, spans: int) -> None:
        with self._count_lock:  # the event loop's thread and the export thread both drop
            self.dropped_spans += spans

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[SuiteResult] = []
            item = self._queue.get()
            while item is not _STOP and isinstance(item, SuiteResult):
                batch.append(item)
                if len(batch) >= BATCH_SUITES:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is _STOP
            if batch:
                self._export(batch)

    def _export(self, batch: Sequence[SuiteResult]) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            spans = [span for suite in batch for span in self.builder.spans(suite)]
        except Exception:  # a malformed result must not stop the exporter
            logger.exception("OTLP export: could not build spans")
            return
        try:
            ok = self._exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception as exc:  # the SDK catches its own errors; this is a last resort
            self._sdk_logs.last = f"{type(exc).__name__}"
            ok = False
        if ok:
            self.exported_spans += len(spans)
            if self._failing:
                self._failing = False
                logger.info(f"OTLP export to {self.endpoint} works again")
            return
        self._drop(len(spans))
        if not self._failing:
            self._failing = True
            logger.warning(
                f"OTLP export to {self.endpoint} failed ({self._sdk_logs.last or 'no answer'}): "
                f"{len(spans)} spans dropped; spans are dropped until it works again"
            )


def server_of(base_url: str) -> tuple[str, int | None]:
    """Return the host and explicit port of a target's base URL."""
    parts = urlsplit(base_url)
    return parts.hostname or "", parts.port


def otlp_listener(settings: Settings) -> OtlpExporter:
    """Return the exporter listener for ``settings.otlp_endpoint`` (needs the [otlp] extra)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource

    endpoint = (settings.otlp_endpoint or "").strip()
    resource = Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.version": __version__,
            "deployment.environment.name": settings.environment,
        }
    )
    servers = {name: server_of(t.base_url) for name, t in settings.targets.items()}
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_SECONDS)
    return OtlpExporter(SpanBuilder(resource, servers), exporter, endpoint=endpoint)
