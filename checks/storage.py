"""Storage: an S3 round trip under the suite's own prefix, and that prefix's hygiene.

Target ``s3`` is the S3 endpoint (e.g. ``https://s3.eu-west-2.amazonaws.com``; in the demo,
moto); credentials come from ``SYNTHETIC_SECRETS__S3_ACCESS_KEY_ID`` and
``SYNTHETIC_SECRETS__S3_SECRET_ACCESS_KEY`` (or boto3's default chain when unset). Objects go
under ``synthetic/storage/`` of ``BUCKET``; each is tracked in the cleanup ledger before it is
written, and its janitor deletes every version *and* delete marker.

Why hygiene: in a versioned bucket a plain DELETE only adds a delete marker. Test clean-ups that
deleted that way once left millions of markers under a prefix, and listing it slowed until it
timed out. ``prefix_hygiene`` fails when more than ``MAX_DELETE_MARKERS`` pile up, and the
counts are exported as ``synthetic_storage_object_versions`` and
``synthetic_storage_delete_markers`` to alert on trends before that.

Without an ``s3`` target, the tests are skipped. These calls run boto3 in a worker thread: the
tests and their steps are timed, but the calls are not HTTP-instrumented (no phases or cache
metrics).
"""

from __future__ import annotations

import uuid

from _targets import require_targets

from synthetic_exporter import Suite, T
from synthetic_exporter.s3 import S3Bucket, delete_s3_object

suite = Suite("storage", timeout="60s", tags=["storage"])
suite.janitor("s3-object")(delete_s3_object)

BUCKET = "synthetic-demo"
MAX_DELETE_MARKERS = 100  # a healthy prefix has none: every clean-up removes its markers


@suite.test
async def round_trip(t: T) -> None:
    """Put an object, read it back, find it listed, delete it for good."""
    require_targets(t, "s3")
    bucket = S3Bucket.from_target(t, "s3", bucket=BUCKET)
    name = f"round-trip/{uuid.uuid4().hex}.txt"
    body = f"synthetic check {t.full_name}\n".encode()
    async with t.step("put"):
        stored = await bucket.put(name, body, content_type="text/plain")
    t.log(f"stored {stored.key} version {stored.version_id}")
    async with t.step("get"):
        assert await bucket.get(name) == body
    async with t.step("list"):
        assert name in await bucket.list()
    async with t.step("delete"):
        assert await bucket.delete(name) >= 1
    assert name not in await bucket.list()


@suite.test
async def prefix_hygiene(t: T) -> None:
    """The suite's prefix holds no pile of delete markers (counts exported as gauges)."""
    require_targets(t, "s3")
    bucket = S3Bucket.from_target(t, "s3", bucket=BUCKET)
    counts = await bucket.hygiene()
    t.log(f"{counts.object_versions} object versions, {counts.delete_markers} delete markers")
    assert counts.delete_markers <= MAX_DELETE_MARKERS, (
        f"{counts.delete_markers} delete markers under s3://{BUCKET}/{bucket.prefix}: something"
        " deletes without version ids; purge them (every version and marker) before listing"
        " the prefix times out"
    )
