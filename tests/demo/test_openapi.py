"""The demo API's OpenAPI document: valid, complete, and true to what the handlers answer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.routing import Route

from synthetic_exporter.demo import schemas
from synthetic_exporter.demo.__main__ import main
from synthetic_exporter.demo.api import create_app
from synthetic_exporter.demo.openapi import build_openapi, openapi_json
from tests.conftest import ROOT

MARKER = {"X-Synthetic-Test": "tests/demo"}
UNDOCUMENTED = {  # operator tools and test helpers, not part of the customer API
    ("GET", "/admin/faults"),
    ("GET", "/admin/stats"),
    ("GET", "/admin/customers/{id}"),
    ("GET", "/openapi.json"),
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        yield c


def route_operations() -> set[tuple[str, str]]:
    """(method, path) of every route of the app, in OpenAPI's path syntax."""
    operations: set[tuple[str, str]] = set()
    for route in create_app().routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        operations.update((m, path) for m in route.methods or () if m != "HEAD")
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in document["paths"].items() for m in item}


async def test_served_at_openapi_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    document = r.json()
    assert document["openapi"] == "3.1.0"
    assert document == build_openapi()
    for path in ("/customers", "/customers/{id}/confirm", "/sessions", "/invoices"):
        assert path in document["paths"]
    for path in ("/invoices/{id}/payments", "/challenges/{id}", "/payments/{id}/refund"):
        assert path in document["paths"]
    assert {"/cdn/{key}", "/origin/{key}"} <= set(document["paths"])


def test_every_route_is_documented_and_nothing_else() -> None:
    documented = documented_operations(build_openapi())
    assert documented == route_operations() - UNDOCUMENTED


def test_document_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(build_openapi())


def test_operations_have_ids_and_secured_ones_use_bearer() -> None:
    document = build_openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    secured = {
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if op.get("security")
    }
    assert {"create_invoice", "create_payment", "refund_payment", "get_customer"} <= secured
    assert not {"create_customer", "create_session", "answer_challenge"} & secured
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_every_reference_resolves() -> None:
    document = build_openapi()
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(document)))
    assert refs
    assert refs <= set(document["components"]["schemas"])


def test_module_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    main(["--openapi", str(out)])
    assert out.read_bytes() == openapi_json()


def ok(model: type[BaseModel], response: httpx.Response, status: int) -> Any:
    """The response has the documented status and validates against the documented model."""
    assert response.status_code == status, response.text
    model.model_validate_json(response.content)
    return response.json()


async def test_handlers_answer_what_the_document_says(client: httpx.AsyncClient) -> None:
    body = {"email": "doc@example.test", "name": "Doc", "password": "correct horse"}
    customer = ok(schemas.NewCustomer, await client.post("/customers", json=body), 201)
    confirm = {"token": customer["confirmation_token"]}
    confirmed = await client.post(f"/customers/{customer['id']}/confirm", json=confirm)
    ok(schemas.Customer, confirmed, 200)
    login = {"email": body["email"], "password": body["password"]}
    session = ok(schemas.Session, await client.post("/sessions", json=login), 201)
    auth = {"Authorization": f"Bearer {session['token']}"} | MARKER
    ok(schemas.Customer, await client.get(f"/customers/{customer['id']}", headers=auth), 200)
    new = {"amount_pence": 500, "currency": "EUR", "description": "doc"}
    invoice = ok(schemas.Invoice, await client.post("/invoices", json=new, headers=auth), 201)
    ok(schemas.InvoiceList, await client.get("/invoices", headers=auth), 200)
    card = {"card_number": "4242424242424242", "expiry": "01/30", "cvc": "999"}
    url = f"/invoices/{invoice['id']}/payments"
    payment = ok(schemas.Payment, await client.post(url, json=card, headers=auth), 201)
    challenge = payment["challenge"]["url"]
    ok(schemas.Challenge, await client.get(challenge), 200)
    ok(schemas.Error, await client.post(challenge, json={"code": "000000"}), 400)
    ok(schemas.Payment, await client.post(challenge, json={"code": "123456"}), 200)
    refund = f"/payments/{payment['id']}/refund"
    ok(schemas.Payment, await client.post(refund, headers=auth), 200)
    ok(schemas.Error, await client.post("/sessions", json={}), 422)
    ok(schemas.Health, await client.get("/health"), 200)


def docs_table_operations() -> set[tuple[str, str]]:
    """(method, path) of every row of the endpoint table in docs/demo-api.md."""
    text = (ROOT / "docs" / "demo-api.md").read_text()
    return set(re.findall(r"^\| `([A-Z]+)` \| `(/[^`]*)` \|", text, flags=re.MULTILINE))


def test_docs_table_lists_every_route_and_nothing_else() -> None:
    listed = docs_table_operations()
    assert listed, "no endpoint table found in docs/demo-api.md"
    assert listed == route_operations()


def test_docs_table_lists_every_documented_operation() -> None:
    assert documented_operations(build_openapi()) <= docs_table_operations()


def test_delay_is_documented_and_answers_as_documented() -> None:
    operation = build_openapi()["paths"]["/delay/{ms}"]["get"]
    assert operation["parameters"][0]["schema"]["maximum"] == schemas.MAX_DELAY_MS
    assert set(operation["responses"]) == {"200", "422"}


async def test_delay_answers_what_the_document_says(client: httpx.AsyncClient) -> None:
    r = await client.get("/delay/5")
    assert (r.status_code, r.json()) == (200, {"delayed_ms": 5})
    too_long = await client.get(f"/delay/{schemas.MAX_DELAY_MS + 1}")
    ok(schemas.Error, too_long, 422)
