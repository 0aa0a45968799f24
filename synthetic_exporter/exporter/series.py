"""Metric families held as plain values and written straight to the exposition formats.

prometheus_client keeps an object with a lock per series (a histogram child holds one value
object per bucket) and renders through generic collectors. For the agent's per-suite series,
thousands of them, that costs memory, microseconds per update and milliseconds per scrape.
A :class:`Family` here keeps a dict from label values to a float (or a :class:`Buckets`),
remembers each series' rendered label text, and writes the text format (0.0.4) or OpenMetrics
exactly as prometheus_client does (checked by tests/exporter/test_series.py), so a suite's
block costs one pass over plain values. :meth:`Family.metric` presents the same values to a
prometheus_client registry (the slow, general path: tests and other consumers).

Updates come from the event loop; rendering may run in a worker thread. A render copies each
dict before iterating (``list(d.items())`` runs in C, without releasing the GIL), so it never
sees a dict change size; it may see a histogram between two of one observation's updates,
as prometheus_client's renders may too.

A histogram observation may carry an exemplar (labels such as a trace id and a run id): each
bucket keeps its latest one, and only the OpenMetrics format shows them, after the bucket's
sample (``# {run_id="...",trace_id="..."} value timestamp``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

Kind = Literal["gauge", "counter", "histogram"]
Key = tuple[str, ...]
EXEMPLAR_MAX_CHARS = 128
"""OpenMetrics' bound on an exemplar's label names and values together (code points)."""


def go_float(value: float) -> str:
    """Format a sample value as prometheus_client does (Go's formatting: ``1.0``, ``+Inf``)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def escape_label_value(value: str) -> str:
    """Escape a label value for both exposition formats."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if openmetrics else text


class ExemplarLabels:
    """An exemplar's labels, checked and rendered once, for every observation that carries them.

    Make them with :func:`exemplar_labels`.
    """

    __slots__ = ("pairs", "text")

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self.pairs = pairs
        self.text = ",".join([f'{n}="{escape_label_value(v)}"' for n, v in pairs])


def exemplar_labels(labels: Mapping[str, str]) -> ExemplarLabels | None:
    """Return exemplar labels of ``labels`` (empty values left out), or None if none is left.

    Labels longer than :data:`EXEMPLAR_MAX_CHARS` together give None too: OpenMetrics forbids
    them, and the observation is then made without an exemplar.
    """
    pairs = tuple(sorted(pair for pair in labels.items() if pair[1]))
    if not pairs or len("".join(map("".join, pairs))) > EXEMPLAR_MAX_CHARS:
        return None
    return ExemplarLabels(pairs)


class BucketExemplar:
    """One bucket's latest exemplar: its labels, value and timestamp.

    Its OpenMetrics text is made at the first render that shows it and kept, so that a suite's
    block, rendered again after each run, formats only the exemplars that run replaced.
    """

    __slots__ = ("_text", "labels", "timestamp", "value")

    def __init__(self, labels: ExemplarLabels, value: float, timestamp: float | None) -> None:
        self.labels = labels
        self.value = value
        self.timestamp = timestamp
        self._text: str | None = None

    def text(self) -> str:
        """Return the exemplar as OpenMetrics writes it after a bucket sample."""
        if self._text is None:
            stamp = "" if self.timestamp is None else f" {self.timestamp}"
            self._text = f" # {{{self.labels.text}}} {go_float(self.value)}{stamp}"
        return self._text

    def exemplar(self) -> Exemplar:
        """Return it as a prometheus_client ``Exemplar``."""
        return Exemplar(dict(self.labels.pairs), self.value, self.timestamp)


class Buckets:
    """One histogram series: per-bucket counts (the last is +Inf), sum, count and exemplars."""

    __slots__ = ("count", "counts", "exemplars", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0
        self.count = 0
        self.exemplars: list[BucketExemplar | None] | None = None  # made at the first one


@dataclass(slots=True, kw_only=True)
class Family:
    """One metric family: its definition and its series' values.

    ``name`` is the name the text format shows: counters end in ``_total``. ``labels`` are every
    label name in order (the constant ones first); a key gives their values in that order.
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    values: dict[Key, float] = field(default_factory=dict)
    histograms: dict[Key, Buckets] = field(default_factory=dict)
    _label_text: dict[Key, str] = field(default_factory=dict)
    _bucket_text: dict[Key, tuple[str, str]] = field(default_factory=dict)
    _headers: dict[bool, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")
        if self.kind == "histogram":
            self.buckets = (*sorted(self.buckets), float("inf"))

    # updates

    def set(self, key: Key, value: float) -> None:
        """Set a gauge."""
        if key not in self.values:
            self._new(key)
        self.values[key] = value

    def inc(self, key: Key, amount: float = 1.0) -> None:
        """Add to a counter (creating it at 0 first)."""
        if amount < 0:
            raise ValueError("counters only go up")
        if key not in self.values:
            self._new(key)
            self.values[key] = 0.0
        self.values[key] += amount

    def touch(self, key: Key) -> None:
        """Create a counter at 0, so that rates work from its first increment."""
        self.inc(key, 0.0)

    def observe(
        self,
        key: Key,
        value: float,
        exemplar: ExemplarLabels | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Add an observation to a histogram; with ``exemplar``, it is its bucket's exemplar.

        ``timestamp`` (seconds since the epoch) is the exemplar's.
        """
        series = self.histograms.get(key)
        if series is None:
            self._new(key)
            series = self.histograms[key] = Buckets(len(self.buckets))
        index = bisect_left(self.buckets, value)
        series.counts[index] += 1
        series.sum += value
        series.count += 1
        if exemplar is not None:
            if series.exemplars is None:
                series.exemplars = [None] * len(self.buckets)
            series.exemplars[index] = BucketExemplar(exemplar, value, timestamp)

    def remove(self, key: Key) -> None:
        """Remove a series, if it exists (Prometheus marks it stale at its next scrape)."""
        self.values.pop(key, None)
        self.histograms.pop(key, None)
        self._label_text.pop(key, None)
        self._bucket_text.pop(key, None)

    def _new(self, key: Key) -> None:
        if len(key) != len(self.labels):
            raise ValueError(f"{self.name}: expected labels {self.labels}, got {key}")
        # prometheus_client writes label names sorted; a bucket's ``le`` takes its sorted place.
        pairs = sorted(zip(self.labels, key, strict=True))
        self._label_text[key] = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in pairs)
        if self.kind == "histogram":
            before = [f'{n}="{escape_label_value(v)}",' for n, v in pairs if n < "le"]
            after = [f',{n}="{escape_label_value(v)}"' for n, v in pairs if n > "le"]
            self._bucket_text[key] = ("".join(before), "".join(after))

    # exposition

    def header(self, openmetrics: bool) -> bytes:
        """Return the HELP and TYPE lines (made once per format)."""
        header = self._headers.get(openmetrics)
        if header is None:
            name = self.name.removesuffix("_total") if openmetrics else self.name
            help_text = _escape_help(self.help, openmetrics)
            header = f"# HELP {name} {help_text}\n# TYPE {name} {self.kind}\n".encode()
            self._headers[openmetrics] = header
        return header

    def samples(self, openmetrics: bool = False) -> bytes:
        """Return the sample lines (created samples disabled).

        They are the same in both formats but for histogram exemplars, OpenMetrics only.
        """
        lines: list[str] = []
        texts = self._label_text
        if self.kind != "histogram":
            name = self.name
            for key, value in list(self.values.items()):
                pairs = texts.get(key)
                if pairs is None:  # removed since the copy
                    continue
                labels = f"{{{pairs}}}" if pairs else ""
                lines.append(f"{name}{labels} {go_float(value)}\n")
            return "".join(lines).encode()
        bounds = [go_float(b) for b in self.buckets]
        for key, series in list(self.histograms.items()):
            before, after = self._bucket_text[key]
            total = 0
            exemplars = series.exemplars if openmetrics else None
            for index, (bound, count) in enumerate(zip(bounds, list(series.counts), strict=True)):
                total += count
                line = f'{self.name}_bucket{{{before}le="{bound}"{after}}} {go_float(total)}'
                exemplar = exemplars[index] if exemplars is not None else None
                if exemplar is not None:
                    line += exemplar.text()
                lines.append(f"{line}\n")
            pairs = texts[key]
            labels = f"{{{pairs}}}" if pairs else ""
            lines.append(f"{self.name}_count{labels} {go_float(series.count)}\n")
            lines.append(f"{self.name}_sum{labels} {go_float(series.sum)}\n")
        return "".join(lines).encode()

    def metric(self) -> Metric:
        """Return the family as a prometheus_client ``Metric`` (for registries)."""
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        metric = Metric(base, self.help, self.kind)
        if self.kind != "histogram":
            for key, value in list(self.values.items()):
                metric.add_sample(self.name, dict(zip(self.labels, key, strict=True)), value)
            return metric
        for key, series in list(self.histograms.items()):
            labels = dict(zip(self.labels, key, strict=True))
            total = 0
            counts = list(series.counts)
            exemplars = series.exemplars or [None] * len(counts)
            for bound, count, kept in zip(self.buckets, counts, exemplars, strict=True):
                total += count
                metric.add_sample(
                    f"{self.name}_bucket",
                    {**labels, "le": go_float(bound)},
                    total,
                    exemplar=kept.exemplar() if kept is not None else None,
                )
            metric.add_sample(f"{self.name}_count", labels, series.count)
            metric.add_sample(f"{self.name}_sum", labels, series.sum)
        return metric
