"""The demo API, through its ASGI app, plus the real server in-process and as a subprocess."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import synthetic_exporter
from synthetic_exporter.app.web import GRACEFUL_SHUTDOWN_SECONDS
from synthetic_exporter.demo.api import create_app
from synthetic_exporter.demo.server import serve_demo

Json = dict[str, Any]
MARKER = {"X-Synthetic-Test": "tests/demo"}
PASSWORD = "correct horse battery"
CARD = {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
START_TIMEOUT_S = 15


@pytest.fixture
def anyio_backend() -> str:
    """uvicorn, and so the embedded server, is asyncio-only."""
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        yield c


async def sign_up(client: httpx.AsyncClient, email: str, *, synthetic: bool = True) -> Json:
    body = {"email": email, "name": "Synthetic Sam", "password": PASSWORD}
    response = await client.post("/customers", json=body, headers=MARKER if synthetic else {})
    assert response.status_code == 201, response.text
    customer: Json = response.json()
    return customer


async def customer_session(
    client: httpx.AsyncClient, email: str, *, synthetic: bool = True
) -> tuple[Json, dict[str, str]]:
    """A confirmed customer and the headers of a logged-in session."""
    customer = await sign_up(client, email, synthetic=synthetic)
    token = {"token": customer["confirmation_token"]}
    assert (
        await client.post(f"/customers/{customer['id']}/confirm", json=token)
    ).status_code == 200
    login = await client.post("/sessions", json={"email": email, "password": PASSWORD})
    assert login.status_code == 201, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    return customer, headers | (MARKER if synthetic else {})


async def new_invoice(client: httpx.AsyncClient, auth: dict[str, str], amount: int = 1250) -> Json:
    body = {"amount_pence": amount, "currency": "GBP", "description": "Synthetic widgets"}
    response = await client.post("/invoices", json=body, headers=auth)
    assert response.status_code == 201, response.text
    invoice: Json = response.json()
    return invoice


async def stats(client: httpx.AsyncClient) -> Json:
    result: Json = (await client.get("/admin/stats")).json()
    return result


# --- the happy path ------------------------------------------------------------------------


async def test_signup_confirm_login(client: httpx.AsyncClient) -> None:
    customer = await sign_up(client, "sam@example.test")
    assert customer["id"].startswith("cus_")
    assert customer["confirmed"] is False
    assert customer["synthetic"] is True
    assert datetime.fromisoformat(customer["created_at"]).utcoffset() == timedelta(0)
    login = {"email": "sam@example.test", "password": PASSWORD}
    early = await client.post("/sessions", json=login)
    assert (early.status_code, early.json()) == (403, {"error": "customer not confirmed"})
    confirm_url = f"/customers/{customer['id']}/confirm"
    assert (await client.post(confirm_url, json={"token": "nope"})).status_code == 400
    confirmed = await client.post(confirm_url, json={"token": customer["confirmation_token"]})
    assert confirmed.json()["confirmed"] is True
    session = await client.post("/sessions", json=login)
    assert session.status_code == 201
    assert session.json()["customer_id"] == customer["id"]
    auth = {"Authorization": f"Bearer {session.json()['token']}"}
    me = await client.get(f"/customers/{customer['id']}", headers=auth)
    assert me.status_code == 200
    assert "confirmation_token" not in me.json()
    assert me.json()["email"] == "sam@example.test"


async def test_invoice_pay_challenge_refund(client: httpx.AsyncClient) -> None:
    customer, auth = await customer_session(client, "payer@example.test")
    invoice = await new_invoice(client, auth)
    assert invoice["id"].startswith("inv_")
    assert (invoice["customer_id"], invoice["status"], invoice["synthetic"]) == (
        customer["id"],
        "open",
        True,
    )
    pdf = await client.get(f"/invoices/{invoice['id']}/pdf", headers=auth)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4")
    assert pdf.content.endswith(b"%%EOF")
    assert invoice["id"].encode() in pdf.content

    paid = await client.post(f"/invoices/{invoice['id']}/payments", json=CARD, headers=auth)
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["id"].startswith("pay_")
    assert (payment["status"], payment["amount_pence"]) == ("requires_challenge", 1250)
    challenge_url = payment["challenge"]["url"]
    assert challenge_url == f"/challenges/{payment['challenge']['id']}"
    page = (await client.get(challenge_url)).json()
    assert page["payment_id"] == payment["id"]
    code = page["hint"].rsplit(" ", 1)[1]
    assert (await client.post(challenge_url, json={"code": "000000"})).status_code == 400
    done = await client.post(challenge_url, json={"code": code})
    assert done.json()["status"] == "succeeded"
    assert (await client.post(challenge_url, json={"code": code})).status_code == 409
    invoice_url = f"/invoices/{invoice['id']}"
    assert (await client.get(invoice_url, headers=auth)).json()["status"] == "paid"
    assert (await client.post(f"{invoice_url}/void", headers=auth)).status_code == 409

    refund = await client.post(f"/payments/{payment['id']}/refund", headers=auth)
    assert refund.json()["status"] == "refunded"
    assert (await client.get(invoice_url, headers=auth)).json()["status"] == "refunded"
    again = await client.post(f"/payments/{payment['id']}/refund", headers=auth)
    assert again.status_code == 409


async def test_declined_card_and_closed_invoices(client: httpx.AsyncClient) -> None:
    _, auth = await customer_session(client, "declined@example.test")
    invoice = await new_invoice(client, auth)
    pay_url = f"/invoices/{invoice['id']}/payments"
    declined = await client.post(
        pay_url, json=CARD | {"card_number": "4000000000000002"}, headers=auth
    )
    assert (declined.status_code, declined.json()) == (402, {"error": "card declined"})
    voided = await client.post(f"/invoices/{invoice['id']}/void", headers=auth)
    assert voided.json()["status"] == "void"
    assert (await client.post(pay_url, json=CARD, headers=auth)).status_code == 409


async def test_invoices_are_listed_newest_first(client: httpx.AsyncClient) -> None:
    _, auth = await customer_session(client, "lister@example.test")
    _, other = await customer_session(client, "other@example.test")
    ids = [(await new_invoice(client, auth, amount))["id"] for amount in (100, 200, 300)]
    await new_invoice(client, other)
    listed = await client.get("/invoices", headers=auth)
    assert [item["id"] for item in listed.json()["items"]] == ids[::-1]


# --- errors --------------------------------------------------------------------------------


async def test_validation_errors_name_the_fields(client: httpx.AsyncClient) -> None:
    bad = await client.post("/customers", json={"email": "not-an-email", "password": "short"})
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"email", "name", "password"}
    assert "error" in bad.json()
    _, auth = await customer_session(client, "valid@example.test")
    body = {"amount_pence": 0, "currency": "JPY", "description": "x"}
    invoice = await client.post("/invoices", json=body, headers=auth)
    assert set(invoice.json()["fields"]) == {"amount_pence", "currency"}
    garbage = await client.post("/sessions", content=b"{not json", headers=auth)
    assert (garbage.status_code, list(garbage.json()["fields"])) == (422, ["body"])


async def test_auth_and_ownership(client: httpx.AsyncClient) -> None:
    mine, auth = await customer_session(client, "owner@example.test")
    theirs, other = await customer_session(client, "intruder@example.test")
    invoice = await new_invoice(client, auth)
    assert (await client.get("/invoices")).status_code == 401
    bogus = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/invoices", headers=bogus)).status_code == 401
    assert (await client.get(f"/invoices/{invoice['id']}", headers=other)).status_code == 404
    assert (await client.get(f"/customers/{mine['id']}", headers=other)).status_code == 404
    assert (await client.get("/invoices/inv_missing", headers=auth)).status_code == 404
    wrong = await client.post("/sessions", json={"email": mine["email"], "password": "x" * 8})
    assert wrong.status_code == 401
    nobody = await client.post("/sessions", json={"email": "no@example.test", "password": "x"})
    assert nobody.status_code == 401
    unknown = await client.post("/customers/cus_missing/confirm", json={"token": "x"})
    assert unknown.status_code == 404
    assert theirs["id"] != mine["id"]


async def test_duplicate_email_conflicts(client: httpx.AsyncClient) -> None:
    await sign_up(client, "twice@example.test")
    body = {"email": "TWICE@example.test", "name": "Again", "password": PASSWORD}
    response = await client.post("/customers", json=body)
    assert response.status_code == 409
    assert "error" in response.json()


async def test_unknown_routes_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    assert (await client.put("/health")).status_code == 405


# --- the marker rule on deletes ------------------------------------------------------------


async def test_deleting_customers_needs_marker_and_synthetic_data(
    client: httpx.AsyncClient,
) -> None:
    synthetic, auth = await customer_session(client, "synthetic@example.test")
    real = await sign_up(client, "real@example.test", synthetic=False)
    invoice = await new_invoice(client, auth)
    await client.post(f"/invoices/{invoice['id']}/payments", json=CARD, headers=auth)
    assert real["synthetic"] is False

    refused = await client.delete(f"/customers/{synthetic['id']}")
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "only synthetic test data can be deleted"},
    )
    assert (await client.delete(f"/customers/{real['id']}", headers=MARKER)).status_code == 403
    assert (await client.delete(f"/customers/{synthetic['id']}", headers=MARKER)).status_code == 204
    assert (await client.delete(f"/customers/{synthetic['id']}", headers=MARKER)).status_code == 404
    assert (await client.get(f"/admin/customers/{synthetic['id']}")).status_code == 404
    assert (await client.get(f"/admin/customers/{real['id']}")).status_code == 200
    assert (await client.get("/invoices", headers=auth)).status_code == 401
    assert await stats(client) == {
        "customers": 1,
        "invoices": 0,
        "payments": 0,
        "synthetic_customers": 0,
        "synthetic_invoices": 0,
        "synthetic_customers_created": 1,
    }


async def test_deleting_invoices_needs_marker_and_synthetic_data(
    client: httpx.AsyncClient,
) -> None:
    _, auth = await customer_session(client, "invoicer@example.test")
    unmarked = {"Authorization": auth["Authorization"]}
    real = await new_invoice(client, unmarked)
    synthetic = await new_invoice(client, auth)
    assert (real["synthetic"], synthetic["synthetic"]) == (False, True)
    assert (await client.delete(f"/invoices/{synthetic['id']}")).status_code == 403
    assert (await client.delete(f"/invoices/{real['id']}", headers=MARKER)).status_code == 403
    assert (await client.delete(f"/invoices/{synthetic['id']}", headers=MARKER)).status_code == 204
    assert (await client.delete(f"/invoices/{synthetic['id']}", headers=MARKER)).status_code == 404
    assert (await stats(client))["invoices"] == 1


async def test_stats_count_synthetic_data(client: httpx.AsyncClient) -> None:
    _, auth = await customer_session(client, "counted@example.test")
    await sign_up(client, "human@example.test", synthetic=False)
    invoice = await new_invoice(client, auth)
    await client.post(f"/invoices/{invoice['id']}/payments", json=CARD, headers=auth)
    assert await stats(client) == {
        "customers": 2,
        "invoices": 1,
        "payments": 1,
        "synthetic_customers": 1,
        "synthetic_invoices": 1,
        "synthetic_customers_created": 1,
    }


async def test_synthetic_customers_are_listed_to_marked_requests_only(
    client: httpx.AsyncClient,
) -> None:
    first = await sign_up(client, "first@example.test")
    await sign_up(client, "human@example.test", synthetic=False)
    second = await sign_up(client, "second@example.test")
    refused = await client.get("/customers")
    assert (refused.status_code, refused.json()["error"]) == (
        403,
        "only requests carrying X-Synthetic-Test may list customers",
    )
    listed = (await client.get("/customers", headers=MARKER)).json()["items"]
    assert [c["id"] for c in listed] == [first["id"], second["id"]]
    assert all(c["synthetic"] and c["created_at"] for c in listed)
    assert "confirmation_token" not in listed[0]


# --- faults and latency --------------------------------------------------------------------


async def add_fault(client: httpx.AsyncClient, **fault: Any) -> Json:
    response = await client.post("/admin/faults", json=fault)
    assert response.status_code == 201, response.text
    created: Json = response.json()
    return created


async def test_injected_status_and_clearing(client: httpx.AsyncClient) -> None:
    fault = await add_fault(client, path="/health", method=None, status=503)
    assert fault["id"].startswith("flt_")
    assert fault | {"id": "x"} == {
        "id": "x",
        "path": "/health",
        "method": None,
        "status": 503,
        "delay_ms": 0,
        "delay_after_ms": 0,
    }
    failed = await client.get("/health")
    assert (failed.status_code, failed.json()) == (503, {"error": "injected fault"})
    assert (await client.get("/admin/faults")).json() == {"items": [fault]}
    assert (await client.delete(f"/admin/faults/{fault['id']}")).status_code == 204
    assert (await client.delete(f"/admin/faults/{fault['id']}")).status_code == 404
    assert (await client.get("/health")).json() == {"status": "ok"}


async def test_faults_filter_by_method_and_first_match_wins(client: httpx.AsyncClient) -> None:
    await add_fault(client, path="/customers", method="post", status=500)
    await add_fault(client, path="/", status=418)
    body = {"email": "faulty@example.test", "name": "F", "password": PASSWORD}
    assert (await client.post("/customers", json=body)).status_code == 500
    assert (await client.get("/customers/cus_x")).status_code == 418
    assert (await client.get("/admin/stats")).status_code == 200
    assert (await client.delete("/admin/faults")).status_code == 204
    assert (await client.get("/admin/faults")).json() == {"items": []}
    assert (await client.post("/customers", json=body)).status_code == 201


async def test_injected_delay_passes_through(client: httpx.AsyncClient) -> None:
    await add_fault(client, path="/health", delay_ms=200)
    await add_fault(client, path="/customers", method="POST", delay_ms=50)
    started = time.monotonic()
    response = await client.get("/health")
    assert time.monotonic() - started >= 0.2
    assert response.json() == {"status": "ok"}
    created = await sign_up(client, "slow@example.test")
    assert created["email"] == "slow@example.test"


async def test_delay_after_holds_the_answer_of_a_create_that_already_happened(
    client: httpx.AsyncClient,
) -> None:
    await add_fault(client, path="/customers", method="POST", delay_after_ms=300)
    body = {"email": "held@example.test", "name": "Held", "password": PASSWORD}
    async with anyio.create_task_group() as group:
        started = time.monotonic()
        answers: list[httpx.Response] = []

        async def create() -> None:
            answers.append(await client.post("/customers", json=body, headers=MARKER))

        group.start_soon(create)
        await anyio.sleep(0.15)
        assert answers == []  # the client is still waiting
        listed = (await client.get("/customers", headers=MARKER)).json()["items"]
        assert [c["email"] for c in listed] == ["held@example.test"]  # yet it exists
    assert answers[0].status_code == 201
    assert time.monotonic() - started >= 0.3


async def test_invalid_faults_are_rejected(client: httpx.AsyncClient) -> None:
    bad = await client.post("/admin/faults", json={"path": "health", "delay_ms": -1})
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"path", "delay_ms"}


async def test_delay_endpoint_waits(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.get("/delay/150")
    assert time.monotonic() - started >= 0.15
    assert response.json() == {"delayed_ms": 150}


# --- real servers --------------------------------------------------------------------------


@pytest.mark.slow
async def test_serve_demo_in_process_stops_on_cancel() -> None:
    ports: list[int] = []
    ready = anyio.Event()

    def on_ready(port: int) -> None:
        ports.append(port)
        ready.set()

    with anyio.fail_after(START_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_demo, "127.0.0.1", 0, on_ready)
            await ready.wait()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}") as http:
                assert (await http.get("/health")).json() == {"status": "ok"}
                with pytest.raises(httpx.TimeoutException):
                    await http.get("/delay/30000", timeout=0.2)
            started = time.monotonic()
            tg.cancel_scope.cancel()
    # The abandoned /delay request stops with its client, so shutdown need not wait for it.
    assert time.monotonic() - started < GRACEFUL_SHUTDOWN_SECONDS
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{ports[0]}/health", timeout=2)


def read_line_with(process: subprocess.Popen[str], text: str, timeout: float) -> str:
    """The first stdout line containing ``text``; fails after ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if text in line:
            return line.strip()
        seen.append(line)
    raise AssertionError(f"no {text!r} line within {timeout}s; got {''.join(seen)!r}")


@pytest.mark.slow
def test_module_runs_a_real_server() -> None:
    root = str(Path(synthetic_exporter.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), root) if p)
    command = [sys.executable, "-m", "synthetic_exporter.demo", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONPATH": path},
    )
    try:
        line = read_line_with(process, "demo API listening on ", START_TIMEOUT_S)
        url = line.removeprefix("demo API listening on ")
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/health", timeout=5)
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
