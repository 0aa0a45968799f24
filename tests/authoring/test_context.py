"""The authoring API of test data: ``t.intend`` before a create, ``t.track(..., key=)`` after.

The "server" here is a dict that the suite's janitor and orphan listing read and change; the
runner, ledger and sweeper are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from synthetic_exporter import JanitorContext, Orphan, Resource, Suite, T
from synthetic_exporter.authoring.janitor import KEY_PATTERN
from synthetic_exporter.core.results import Outcome
from synthetic_exporter.core.settings import Settings
from tests.engine_helpers import by_name, run_suites

SettingsFor = Callable[..., Settings]


def customers_suite(server: dict[str, str], deleted: list[Resource]) -> Suite:
    """A suite whose customers live in ``server`` (id -> name), with janitor and listing."""
    suite = Suite("customers", stop_on_failure=False)

    @suite.janitor("customer")
    def delete_customer(j: JanitorContext, r: Resource) -> None:
        deleted.append(r)
        server.pop(r.id, None)

    @suite.orphans("customer")
    def list_customers(j: JanitorContext) -> list[Orphan]:
        return [Orphan(cid, time.time(), marker=name) for cid, name in server.items()]

    return suite


async def test_an_intent_resolved_by_track_reaches_the_janitor(settings_for: SettingsFor) -> None:
    server: dict[str, str] = {}
    deleted: list[Resource] = []
    suite = customers_suite(server, deleted)
    keys: list[str] = []

    @suite.test
    async def create(t: T) -> None:
        key = t.intend("customer")
        keys.append(key)
        keys.append(t.intend("customer"))
        server["cus_1"] = f"Synthetic {key}"
        t.track("customer", "cus_1", key=key, email="a@example.com")

    recorder = await run_suites(settings_for(), [suite])
    assert by_name(recorder.tests)["customers/create"].outcome is Outcome.PASSED
    assert len(set(keys)) == 2
    assert all(KEY_PATTERN.fullmatch(key) for key in keys)
    assert [(r.id, r.data) for r in deleted] == [("cus_1", {"email": "a@example.com"})]
    assert server == {}


async def test_a_create_whose_answer_never_came_is_found_by_its_key(
    settings_for: SettingsFor,
) -> None:
    server = {"cus_human": "Ada Lovelace"}
    deleted: list[Resource] = []
    suite = customers_suite(server, deleted)

    @suite.test
    async def create_then_lose_the_answer(t: T) -> None:
        key = t.intend("customer")
        server["cus_2"] = f"Synthetic {key}"  # created on the server ...
        raise ConnectionResetError("... but the answer was lost")

    recorder = await run_suites(settings_for(), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.ERROR
    assert [r.id for r in deleted] == ["cus_2"]  # at the end of the same run
    assert server == {"cus_human": "Ada Lovelace"}  # young, unkeyed data is left alone
    assert recorder.suites[0].janitor_failures == ()


async def test_misused_keys_and_kinds_fail_the_test_and_say_why(settings_for: SettingsFor) -> None:
    server: dict[str, str] = {}
    suite = customers_suite(server, [])

    @suite.janitor("invoice")
    def delete_invoice(j: JanitorContext, r: Resource) -> None: ...

    @suite.test
    async def unknown_key(t: T) -> None:
        t.track("customer", "cus_3", key="synthetic-nope-1")

    @suite.test
    async def key_of_another_kind(t: T) -> None:
        key = t.intend("customer")
        t.track("invoice", "inv_1", key=key)

    @suite.test
    async def kind_without_listing(t: T) -> None:
        t.intend("invoice")

    @suite.test
    async def kind_without_janitor(t: T) -> None:
        t.intend("order")

    @suite.test
    async def empty_id(t: T) -> None:
        t.track("customer", "")

    recorder = await run_suites(settings_for(), [suite])
    messages = {r.name: r.message for r in recorder.tests}
    assert all(r.outcome is Outcome.ERROR for r in recorder.tests), messages
    assert "no unresolved 'customer' intent with key 'synthetic-nope-1'" in messages["unknown_key"]
    assert "no unresolved 'invoice' intent" in messages["key_of_another_kind"]
    assert "no orphan listing for 'invoice'" in messages["kind_without_listing"]
    assert ".orphans('invoice')" in messages["kind_without_listing"]
    assert "no janitor for 'order'" in messages["kind_without_janitor"]
    assert "needs the resource's id" in messages["empty_id"]


async def test_plain_track_still_works_without_intents(settings_for: SettingsFor) -> None:
    suite = Suite("plain")
    deleted: list[str] = []

    @suite.janitor("thing")
    def delete_thing(j: JanitorContext, r: Resource) -> None:
        deleted.append(r.id)

    @suite.test
    async def make(t: T) -> None:
        t.track("thing", 42, size="L")

    await run_suites(settings_for(), [suite])
    assert deleted == ["42"]
