"""S3 for storage checks: a bucket prefix of a check's own, cleaned up, with hygiene counts.

Example (the base URL of target ``s3`` is the S3 endpoint, e.g. ``https://s3.amazonaws.com``)::

    from synthetic_exporter.s3 import S3Bucket, delete_s3_object

    suite = Suite("storage")
    suite.janitor("s3-object")(delete_s3_object)   # deletes every version and delete marker

    @suite.test
    async def round_trip(t: T) -> None:
        bucket = S3Bucket.from_target(t, "s3", bucket="synthetic-demo")
        await bucket.put("hello.txt", b"hello")      # tracked in the cleanup ledger first
        assert await bucket.get("hello.txt") == b"hello"
        versions, markers = await bucket.hygiene()   # also exported as gauges

boto3 is blocking, so every call runs in a worker thread (``anyio.to_thread.run_sync``); these
calls are timed by the test's clock and steps, not by the HTTP instrumentation of ``t.http``.
boto3 is imported on first use: install the ``s3`` extra (``pip install
'synthetic-exporter[s3]'``).

Credentials come from the secrets ``SYNTHETIC_SECRETS__S3_ACCESS_KEY_ID`` and
``SYNTHETIC_SECRETS__S3_SECRET_ACCESS_KEY`` (plus ``..._S3_SESSION_TOKEN`` for temporary ones);
without them boto3's default chain is used (environment, web identity, instance role).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import anyio

from synthetic_exporter.authoring.context import settings_of
from synthetic_exporter.http.clients import MARKER_HEADER

if TYPE_CHECKING:
    from synthetic_exporter.authoring.context import T
    from synthetic_exporter.authoring.janitor import JanitorContext, Resource
    from synthetic_exporter.core.settings import Settings

__all__ = [
    "ACCESS_KEY_SECRET",
    "DEFAULT_REGION",
    "RESOURCE_KIND",
    "SECRET_KEY_SECRET",
    "SESSION_TOKEN_SECRET",
    "Hygiene",
    "MissingExtraError",
    "S3Bucket",
    "StorageContext",
    "StoredObject",
    "count_versions",
    "delete_s3_object",
    "error_code",
    "purge_key",
]

RESOURCE_KIND = "s3-object"
ACCESS_KEY_SECRET = "s3_access_key_id"
SECRET_KEY_SECRET = "s3_secret_access_key"
SESSION_TOKEN_SECRET = "s3_session_token"
DEFAULT_REGION = "us-east-1"
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys

R = TypeVar("R")


class MissingExtraError(ImportError):
    """boto3 is not installed."""


class StorageContext(Protocol):
    """What :class:`S3Bucket` needs of a test context; :class:`~synthetic_exporter.T` has it."""

    @property
    def suite(self) -> str:
        """The name of the test's suite."""

    def track(self, kind: str, resource_id: object, **data: Any) -> None:
        """Record a resource in the durable cleanup ledger (its janitor deletes it)."""

    def report_storage(self, target: str, object_versions: int, delete_markers: int) -> None:
        """Record the hygiene counts under a prefix (exported as gauges)."""


class Hygiene(NamedTuple):
    """What lies under a prefix: object versions (current and noncurrent), delete markers."""

    object_versions: int
    delete_markers: int


@dataclass(frozen=True, slots=True)
class StoredObject:
    """The result of a put."""

    key: str
    etag: str
    version_id: str | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach S3: URL, region, TLS, timeout, credentials."""

    url: str | None
    region: str
    verify: bool | str
    timeout: float
    access_key: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    environment: str = "default"


_clients: dict[Endpoint, Any] = {}
_clients_lock = threading.Lock()


def _boto3() -> Any:
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingExtraError(
            "S3 checks need boto3: pip install 'synthetic-exporter[s3]'"
        ) from exc
    return boto3


def _secret(settings: Settings, name: str) -> str | None:
    value = settings.secrets.get(name)
    return value.get_secret_value() if value is not None else None


def endpoint_for(settings: Settings, target: str, region: str, url: str | None = None) -> Endpoint:
    """Return how to reach the target ``target`` (or ``url`` when that target is not set)."""
    access_key = _secret(settings, ACCESS_KEY_SECRET)
    secret_key = _secret(settings, SECRET_KEY_SECRET)
    if (access_key is None) != (secret_key is None):
        raise LookupError(
            f"set both SYNTHETIC_SECRETS__{ACCESS_KEY_SECRET.upper()} and"
            f" SYNTHETIC_SECRETS__{SECRET_KEY_SECRET.upper()}, or neither (boto3's default chain)"
        )
    settings_of_target = settings.targets.get(target)
    if settings_of_target is None and url is None:
        known = ", ".join(sorted(settings.targets)) or "none"
        raise LookupError(
            f"no target named {target!r} (set SYNTHETIC_TARGETS__{target.upper()}__BASE_URL"
            f" to the S3 endpoint; configured: {known})"
        )
    verify: bool | str = True
    timeout = 10.0
    if settings_of_target is not None:
        url = settings_of_target.base_url
        timeout = settings_of_target.timeout
        verify = settings_of_target.verify
        if verify and settings_of_target.ca_bundle is not None:
            verify = str(settings_of_target.ca_bundle)
    return Endpoint(
        url=url,
        region=region,
        verify=verify,
        timeout=timeout,
        access_key=access_key,
        secret_key=secret_key,
        session_token=_secret(settings, SESSION_TOKEN_SECRET),
        environment=settings.environment,
    )


def _make_client(endpoint: Endpoint) -> Any:
    """Make a boto3 S3 client: path-style addressing, no retries, the synthetic-test marker."""
    boto3 = _boto3()
    from botocore.config import Config  # type: ignore[import-untyped]

    session = boto3.session.Session()  # clients are thread-safe; the default session is not
    client = session.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        aws_session_token=endpoint.session_token,
        verify=endpoint.verify,
        config=Config(
            connect_timeout=endpoint.timeout,
            read_timeout=endpoint.timeout,
            retries={"total_max_attempts": 1},  # a failure is a failure, not a hidden retry
            s3={"addressing_style": "path"},
        ),
    )

    def add_marker(request: Any, **_: Any) -> None:
        request.headers[MARKER_HEADER] = endpoint.environment

    client.meta.events.register("before-sign.s3", add_marker)
    return client


def client_for(endpoint: Endpoint) -> Any:
    """Return the shared boto3 client of an endpoint (blocking: call from a worker thread)."""
    with _clients_lock:
        client = _clients.get(endpoint)
        if client is None:
            client = _clients[endpoint] = _make_client(endpoint)
        return client


def _batches(items: list[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def error_code(exc: BaseException) -> str | None:
    """Return the S3 error code of a botocore ``ClientError`` (``NoSuchKey``, ...), else None."""
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code) if code is not None else None


def purge_key(client: Any, bucket: str, key: str) -> int:
    """Delete every version and delete marker of ``key`` (blocking); return how many.

    A key, or a whole bucket, that is already gone counts as deleted.
    """
    doomed: list[dict[str, str]] = []
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
    try:
        for page in pages:
            for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]:
                if item["Key"] == key:
                    doomed.append({"Key": key, "VersionId": item["VersionId"]})
    except Exception as exc:
        if error_code(exc) == "NoSuchBucket":
            return 0
        raise
    for batch in _batches(doomed, DELETE_BATCH):
        answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise RuntimeError(
                f"could not delete {len(errors)} version(s) of s3://{bucket}/{key}:"
                f" {first.get('Code')}: {first.get('Message')}"
            )
    return len(doomed)


def count_versions(client: Any, bucket: str, prefix: str) -> Hygiene:
    """Count object versions and delete markers under ``prefix`` (blocking)."""
    versions = markers = 0
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        versions += len(page.get("Versions", ()))
        markers += len(page.get("DeleteMarkers", ()))
    return Hygiene(versions, markers)


class S3Bucket:
    """A prefix of an S3 bucket for one check; keys given to methods are relative to it."""

    def __init__(
        self, t: StorageContext, target: str, endpoint: Endpoint, bucket: str, prefix: str
    ) -> None:
        self.t, self.target, self.endpoint = t, target, endpoint
        self.bucket, self.prefix = bucket, prefix

    @classmethod
    def from_target(
        cls,
        t: T,
        target: str = "s3",
        *,
        bucket: str,
        prefix: str | None = None,
        region: str = DEFAULT_REGION,
    ) -> S3Bucket:
        """Use the endpoint of ``target``; ``prefix`` defaults to ``synthetic/<suite>/``."""
        endpoint = endpoint_for(settings_of(t), target, region)
        return cls(
            t, target, endpoint, bucket, f"synthetic/{t.suite}/" if prefix is None else prefix
        )

    def __repr__(self) -> str:
        return f"S3Bucket(s3://{self.bucket}/{self.prefix}, target={self.target!r})"

    def key(self, name: str) -> str:
        """Return the full key of ``name``."""
        return self.prefix + name

    async def call(self, func: Callable[[Any], R]) -> R:
        """Run ``func(boto3_client)`` in a worker thread: for calls the helper lacks."""
        return await anyio.to_thread.run_sync(self._call_sync, func)

    def _call_sync(self, func: Callable[[Any], R]) -> R:
        return func(client_for(self.endpoint))

    async def put(
        self, name: str, body: bytes | str, *, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        """Store an object, tracked first so that its janitor deletes it whatever happens."""
        key = self.key(name)
        self.t.track(
            RESOURCE_KIND,
            key,
            bucket=self.bucket,
            target=self.target,
            endpoint=self.endpoint.url,
            region=self.endpoint.region,
        )
        data = body.encode() if isinstance(body, str) else body
        put = partial(_put, bucket=self.bucket, key=key, body=data, content_type=content_type)
        answer: dict[str, Any] = await self.call(put)
        return StoredObject(key, str(answer["ETag"]), answer.get("VersionId"))

    async def get(self, name: str) -> bytes:
        """Return an object's bytes (botocore's ``NoSuchKey`` error when there is none)."""
        key = self.key(name)
        body: bytes = await self.call(
            lambda s3: s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        )
        return body

    async def list(self) -> list[str]:
        """Names (relative to the prefix) of the current objects under the prefix, sorted."""

        def names(s3: Any) -> list[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            found = [item["Key"] for page in pages for item in page.get("Contents", ())]
            return sorted(key.removeprefix(self.prefix) for key in found)

        return await self.call(names)

    async def delete(self, name: str) -> int:
        """Delete an object for good: every version and delete marker; return how many."""
        key = self.key(name)
        return await self.call(lambda s3: purge_key(s3, self.bucket, key))

    async def hygiene(self) -> Hygiene:
        """Count versions and delete markers under the prefix, and report them (gauges)."""
        counts = await self.call(lambda s3: count_versions(s3, self.bucket, self.prefix))
        self.t.report_storage(self.target, counts.object_versions, counts.delete_markers)
        return counts


def _put(s3: Any, *, bucket: str, key: str, body: bytes, content_type: str) -> dict[str, Any]:
    answer: dict[str, Any] = s3.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType=content_type
    )
    return answer


async def delete_s3_object(j: JanitorContext, r: Resource) -> None:
    """Janitor of ``s3-object``: delete every version and delete marker of the key.

    Register it in a suite that puts objects: ``suite.janitor("s3-object")(delete_s3_object)``.
    A key that is already gone counts as deleted.
    """
    target = str(r.data.get("target", "s3"))
    region = str(r.data.get("region") or DEFAULT_REGION)
    url = r.data.get("endpoint")
    endpoint = endpoint_for(settings_of(j), target, region, str(url) if url else None)
    bucket = str(r.data["bucket"])
    removed = await anyio.to_thread.run_sync(lambda: purge_key(client_for(endpoint), bucket, r.id))
    if removed:
        j.log(f"deleted {removed} version(s) and delete marker(s) of s3://{bucket}/{r.id}")
