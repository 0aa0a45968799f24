"""The S3 helper and its janitor against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from synthetic_exporter import s3
from synthetic_exporter.authoring.context import Harness, T
from synthetic_exporter.authoring.janitor import JanitorContext, Resource
from synthetic_exporter.authoring.suite import TestFunction
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.demo.storage import create_versioned_bucket, s3_client, s3_server
from synthetic_exporter.s3 import S3Bucket, delete_s3_object

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """moto's S3 in a thread of this process, stopped after the module's tests."""
    with s3_server("127.0.0.1", 0) as url:
        yield url


@pytest.fixture
def bucket_name(s3_url: str) -> str:
    """A fresh versioned bucket per test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    create_versioned_bucket(s3_url, name)
    return name


def make_settings(tmp_path: Path, s3_url: str, **secrets: str) -> Settings:
    values = {"s3_access_key_id": "test-key", "s3_secret_access_key": "test-secret"} | secrets
    return Settings(
        state_dir=tmp_path / "state",
        targets={"s3": TargetSettings(base_url=s3_url, timeout=5)},
        secrets={k: SecretStr(v) for k, v in values.items() if v},
    )


@dataclass
class RecordingTracker:
    """A cleanup ledger stand-in that records what the helper tracks."""

    tracked: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def intend(self, kind: str) -> str:
        raise AssertionError("the S3 helper does not declare intents")

    def track(
        self, kind: str, resource_id: str, data: dict[str, Any], key: str | None = None
    ) -> None:
        self.tracked.append((kind, resource_id, data))


class NoSubtests:
    """The S3 helper runs no subtests."""

    async def run_subtest(
        self, parent: Harness, parent_name: str, name: str, func: TestFunction
    ) -> bool:
        raise AssertionError("no subtests here")


@dataclass
class Probe:
    """A real ``T`` of suite ``storage``, with what it tracked and reported."""

    settings: Settings
    tracker: RecordingTracker = field(default_factory=RecordingTracker)
    harness: Harness = field(init=False)
    t: T = field(init=False)

    def __post_init__(self) -> None:
        self.harness = Harness(
            settings=self.settings, clients={}, tracker=self.tracker, subtests=NoSubtests()
        )
        self.t = T("storage", "test", {}, self.harness)

    @property
    def tracked(self) -> list[tuple[str, str, dict[str, Any]]]:
        return self.tracker.tracked

    @property
    def reports(self) -> list[tuple[str, int, int]]:
        return [(r.target, r.object_versions, r.delete_markers) for r in self.harness.storage]


@pytest.fixture
def probe(tmp_path: Path, s3_url: str) -> Probe:
    return Probe(make_settings(tmp_path, s3_url))


def janitor_context(probe: Probe) -> JanitorContext:
    return JanitorContext(probe.t.suite, settings=probe.settings, clients={})


async def test_put_get_list_delete(probe: Probe, bucket_name: str, s3_url: str) -> None:
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name)
    assert bucket.prefix == "synthetic/storage/"
    stored = await bucket.put("a/one.txt", "one", content_type="text/plain")
    await bucket.put("two.bin", b"\x00\x01")
    assert stored.key == "synthetic/storage/a/one.txt"
    assert stored.version_id
    assert probe.tracked[0] == (
        "s3-object",
        "synthetic/storage/a/one.txt",
        {"bucket": bucket_name, "target": "s3", "endpoint": s3_url, "region": "us-east-1"},
    )
    assert await bucket.get("a/one.txt") == b"one"
    assert await bucket.list() == ["a/one.txt", "two.bin"]
    head = await bucket.call(lambda c: c.head_object(Bucket=bucket_name, Key=stored.key))
    assert head["ContentType"] == "text/plain"

    assert await bucket.delete("a/one.txt") == 1
    assert await bucket.list() == ["two.bin"]
    with pytest.raises(Exception, match="NoSuchKey"):
        await bucket.get("a/one.txt")
    assert await bucket.delete("a/one.txt") == 0  # already gone is fine


async def test_delete_removes_every_version_and_marker(probe: Probe, bucket_name: str) -> None:
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name, prefix="p/")
    for body in (b"1", b"2", b"3"):
        await bucket.put("k", body)
    await bucket.call(lambda c: c.delete_object(Bucket=bucket_name, Key="p/k"))  # a marker
    assert await bucket.hygiene() == (3, 1)
    assert await bucket.delete("k") == 4
    assert await bucket.hygiene() == (0, 0)


async def test_plain_deletes_leave_markers_that_hygiene_counts(
    probe: Probe, bucket_name: str
) -> None:
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name)
    assert await bucket.hygiene() == (0, 0)
    client = s3_client(bucket.endpoint.url or "")
    for n in range(3):
        await bucket.put(f"leak-{n}", b"x")
        client.delete_object(Bucket=bucket_name, Key=bucket.key(f"leak-{n}"))
    assert await bucket.list() == []  # invisible to a listing of current objects...
    counts = await bucket.hygiene()  # ...but still there, slowing every listing down
    assert (counts.object_versions, counts.delete_markers) == (3, 3)
    assert probe.reports == [("s3", 0, 0), ("s3", 3, 3)]
    outside = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name, prefix="other/")
    assert await outside.hygiene() == (0, 0)


async def test_janitor_deletes_versions_and_markers_of_the_tracked_key(
    probe: Probe, bucket_name: str
) -> None:
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name)
    await bucket.put("doomed", b"v1")
    await bucket.put("doomed", b"v2")
    await bucket.put("doomed-not", b"kept")  # shares the key as a prefix: must survive
    await bucket.call(lambda c: c.delete_object(Bucket=bucket_name, Key=bucket.key("doomed")))
    kind, key, data = probe.tracked[0]
    resource = Resource(kind=kind, id=key, data=data, suite=probe.t.suite, attempts=0)

    await delete_s3_object(janitor_context(probe), resource)
    assert await bucket.hygiene() == (1, 0)
    assert await bucket.list() == ["doomed-not"]
    await delete_s3_object(janitor_context(probe), resource)  # already gone counts as deleted


async def test_janitor_uses_the_recorded_endpoint_when_the_target_is_gone(
    tmp_path: Path, probe: Probe, bucket_name: str, s3_url: str
) -> None:
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name)
    await bucket.put("orphan", b"x")
    kind, key, data = probe.tracked[0]
    settings = make_settings(tmp_path, s3_url).model_copy(update={"targets": {}})
    resource = Resource(kind=kind, id=key, data=data, suite="storage", attempts=0)
    await delete_s3_object(JanitorContext("storage", settings=settings, clients={}), resource)
    assert await bucket.hygiene() == (0, 0)


async def test_janitor_treats_a_missing_bucket_as_deleted(probe: Probe, s3_url: str) -> None:
    data = {"bucket": "no-such-bucket-here", "target": "s3", "endpoint": s3_url}
    resource = Resource(
        kind="s3-object", id="synthetic/storage/x", data=data, suite="storage", attempts=3
    )
    await delete_s3_object(janitor_context(probe), resource)
    bucket = S3Bucket.from_target(probe.t, "s3", bucket="no-such-bucket-here")
    with pytest.raises(Exception, match="NoSuchBucket") as raised:
        await bucket.hygiene()
    assert s3.error_code(raised.value) == "NoSuchBucket"


async def test_unversioned_buckets_work_too(probe: Probe, s3_url: str) -> None:
    name = f"plain-{uuid.uuid4().hex[:12]}"
    s3_client(s3_url).create_bucket(Bucket=name)
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=name)
    stored = await bucket.put("x", b"1")
    assert stored.version_id in (None, "null")
    assert await bucket.delete("x") == 1
    assert await bucket.hygiene() == (0, 0)


async def test_requests_carry_the_synthetic_test_marker(probe: Probe, bucket_name: str) -> None:
    bucket = S3Bucket.from_target(probe.t, "s3", bucket=bucket_name)
    sent: list[bytes | str | None] = []

    def capture(request: Any, **_: Any) -> None:  # the prepared request holds bytes
        sent.append(request.headers.get("X-Synthetic-Test"))

    client = s3.client_for(bucket.endpoint)
    client.meta.events.register("before-send.s3", capture)
    try:
        await bucket.put("marked", b"x")
    finally:
        client.meta.events.unregister("before-send.s3", capture)
    assert sent == [probe.settings.environment.encode()]


def test_configuration_errors_say_what_to_set(tmp_path: Path, s3_url: str) -> None:
    half = Probe(make_settings(tmp_path, s3_url, s3_secret_access_key="")).t
    with pytest.raises(LookupError, match="S3_SECRET_ACCESS_KEY, or neither"):
        S3Bucket.from_target(half, "s3", bucket="b")
    t = Probe(make_settings(tmp_path, s3_url)).t
    with pytest.raises(LookupError, match=r"SYNTHETIC_TARGETS__STORE__BASE_URL.*configured: s3"):
        S3Bucket.from_target(t, "store", bucket="b")


def test_secrets_stay_out_of_reprs(tmp_path: Path, s3_url: str) -> None:
    bucket = S3Bucket.from_target(Probe(make_settings(tmp_path, s3_url)).t, "s3", bucket="b")
    assert "test-secret" not in repr(bucket.endpoint)
    assert repr(bucket) == "S3Bucket(s3://b/synthetic/storage/, target='s3')"


def test_missing_boto3_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(s3.MissingExtraError, match=r"pip install 'synthetic-exporter\[s3\]'"):
        s3._boto3()
