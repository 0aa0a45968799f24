"""An S3-compatible server for the demo's storage suite: moto, in a thread, on 127.0.0.1.

moto's ``ThreadedMotoServer`` serves its in-memory S3 with werkzeug in a daemon thread of this
process; ``stop()`` shuts werkzeug down and joins the thread, so nothing outlives the demo.
moto is a development dependency (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any

import anyio

DEMO_BUCKET = "synthetic-demo"
DEMO_REGION = "us-east-1"
# moto accepts any credentials; these make the demo exercise the same settings as production.
DEMO_ACCESS_KEY_ID = "demo-access-key"
DEMO_SECRET_ACCESS_KEY = "demo-secret-key"


@contextmanager
def s3_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve moto's S3 on ``host:port`` (0: a free port) while in the block; yield its URL.

    Blocking (start-up imports moto): call it from a worker thread in async code.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ImportError("the demo's S3 server needs moto: pip install -e '.[dev]'") from exc
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        server.stop()


def s3_client(url: str) -> Any:
    """Return a boto3 client of the demo's S3 server."""
    import boto3  # type: ignore[import-untyped]

    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name=DEMO_REGION,
        aws_access_key_id=DEMO_ACCESS_KEY_ID,
        aws_secret_access_key=DEMO_SECRET_ACCESS_KEY,
    )


def create_versioned_bucket(url: str, bucket: str = DEMO_BUCKET) -> None:
    """Create ``bucket`` with versioning enabled, as production buckets usually are (blocking)."""
    client = s3_client(url)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


@asynccontextmanager
async def demo_s3(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve moto's S3 with the versioned demo bucket while in the block; yield its URL."""
    with ExitStack() as stack:
        try:
            url = await anyio.to_thread.run_sync(stack.enter_context, s3_server(host, port))
            await anyio.to_thread.run_sync(create_versioned_bucket, url)
            yield url
        finally:
            with anyio.CancelScope(shield=True):  # stop the server even when cancelled
                await anyio.to_thread.run_sync(stack.close)
