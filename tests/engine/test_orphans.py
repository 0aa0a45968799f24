"""The orphan sweep against a real demo API: intents found by key, untracked data past the grace
period, failing and hanging listings, forgotten intents."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from synthetic_exporter import JanitorContext, Orphan, Resource, Suite, T
from synthetic_exporter.authoring.janitor import KEY_PATTERN, new_key
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.ledger import Ledger
from synthetic_exporter.engine.orphans import SweepEvents
from synthetic_exporter.engine.wiring import open_engine, sweep_leftovers
from tests.engine_helpers import Recorder, run_suites

pytestmark = pytest.mark.slow

SettingsFor = Callable[..., Settings]
MARKER = {"X-Synthetic-Test": "tests"}
LEDGER = "ledger.sqlite3"


def customer_suite(listing: Callable[[JanitorContext], Any] | None = None) -> Suite:
    """Sign-up as the example suites do it: a janitor and a listing of synthetic customers."""
    suite = Suite("signup")

    @suite.janitor("customer")
    async def delete_customer(j: JanitorContext, r: Resource) -> None:
        resp = await j.http.delete(f"/customers/{r.id}")
        assert resp.status_code in (204, 404), resp.text

    async def synthetic_customers(j: JanitorContext) -> list[Orphan]:
        resp = await j.http.get("/customers")
        assert resp.status_code == 200, resp.text
        return [Orphan(c["id"], c["created_at"], c["name"]) for c in resp.json()["items"]]

    suite.orphans("customer")(listing or synthetic_customers)
    return suite


def create_customer(api: str, name: str) -> str:
    """Create a synthetic customer straight on the demo API; return its id."""
    body = {"email": f"{time.monotonic_ns()}@example.com", "name": name, "password": "x" * 12}
    r = httpx.post(f"{api}/customers", json=body, headers=MARKER, timeout=5)
    assert r.status_code == 201, r.text
    customer_id: str = r.json()["id"]
    return customer_id


def add_fault(api: str, **body: object) -> None:
    r = httpx.post(f"{api}/admin/faults", json=body, timeout=5)
    assert r.status_code == 201, r.text


def synthetic_ids(api: str) -> set[str]:
    r = httpx.get(f"{api}/customers", headers=MARKER, timeout=5)
    return {c["id"] for c in r.json()["items"]}


class Counts(SweepEvents):
    """Counts every event as ``name: [(suite, kind), ...]``."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, str]]] = {}
        names = ("cleanup_failed", "listing_failed", "intent_found")
        for name in (*names, "orphan_found", "intent_forgotten"):
            super().__setattr__(name, self._counter(name))

    def _counter(self, name: str) -> Callable[[str, str], None]:
        return lambda suite, kind: self.seen.setdefault(name, []).append((suite, kind))


def use_counts(engine_sweeper: Any) -> Counts:
    counts = Counts()
    engine_sweeper.events = counts
    return counts


def test_orphans_parse_times_and_keys() -> None:
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert Orphan("c", stamp).created_at == stamp.timestamp()
    assert Orphan("c", "2026-01-02T03:04:05.000+00:00").created_at == stamp.timestamp()
    assert Orphan("c", "2026-01-02T03:04:05Z").created_at == stamp.timestamp()
    assert Orphan("c", stamp.replace(tzinfo=None)).created_at == stamp.timestamp()
    assert Orphan(7, 12.5).id == "7"
    assert Orphan("c", 0, "Synthetic synthetic-ab12-3 and synthetic-ab12-30").keys == {
        "synthetic-ab12-3",
        "synthetic-ab12-30",
    }
    assert Orphan("c", 0, "synthetic-ab12-3@example.com").keys == {"synthetic-ab12-3"}
    with pytest.raises(TypeError, match="created_at"):
        Orphan("c", [1])  # type: ignore[arg-type]
    first, second = new_key("5F3a-9b"), new_key("5F3a-9b")
    assert first != second
    assert KEY_PATTERN.fullmatch(first)
    assert first.startswith("synthetic-5f3a9b-")


async def test_a_create_answered_after_a_kill_is_found_by_its_key_at_start_up(
    settings_for: SettingsFor, fresh_demo_api: str
) -> None:
    settings = settings_for(fresh_demo_api)
    dead = Ledger(settings.state_dir / LEDGER, owner="dead")  # the killed agent's ledger
    key = new_key("run1")
    dead.intend("signup", "customer", key, "run1")
    dead.close()
    lost = create_customer(fresh_demo_api, f"Synthetic {key}")  # its request got through
    untracked = create_customer(fresh_demo_api, "Synthetic without key")  # a young stranger

    async with open_engine(settings, {"signup": customer_suite()}) as engine:
        counts = use_counts(engine.sweeper)
        await sweep_leftovers(engine)
        assert engine.ledger.unresolved() == []
        assert engine.ledger.due(now=float("inf")) == []
    assert synthetic_ids(fresh_demo_api) == {untracked}  # within the grace period: kept
    assert lost not in synthetic_ids(fresh_demo_api)
    assert counts.seen == {"intent_found": [("signup", "customer")]}


async def test_a_timed_out_create_is_found_by_its_key_when_the_run_ends(
    settings_for: SettingsFor, fresh_demo_api: str
) -> None:
    add_fault(fresh_demo_api, path="/customers", method="POST", delay_after_ms=800)
    suite = customer_suite()

    @suite.test(timeout=0.3)
    async def sign_up(t: T) -> None:
        key = t.intend("customer")
        body = {"email": "slow@example.com", "name": f"Synthetic {key}", "password": "x" * 12}
        resp = await t.http.post("/customers", json=body)  # created, answer held back: timeout
        t.track("customer", resp.json()["id"], key=key)

    recorder = await run_suites(settings_for(fresh_demo_api), [suite])
    assert recorder.tests[0].outcome.value == "timeout"
    assert synthetic_ids(fresh_demo_api) == set()  # deleted by the run's own janitor pass


async def test_untracked_data_is_deleted_past_the_grace_period_unless_a_run_holds_it(
    settings_for: SettingsFor, fresh_demo_api: str
) -> None:
    settings = settings_for(fresh_demo_api)
    stranger = create_customer(fresh_demo_api, "Synthetic Check")
    async with open_engine(settings, {"signup": customer_suite()}) as engine:
        counts = use_counts(engine.sweeper)
        live_key = new_key("live")
        engine.ledger.intend("signup", "customer", live_key, "live")  # a live run's create
        in_flight = create_customer(fresh_demo_api, f"Synthetic {live_key}")
        tracked = create_customer(fresh_demo_api, "Synthetic tracked")
        engine.ledger.add("signup", "customer", tracked, {}, "live")

        assert await engine.sweeper.sweep() == []
        assert synthetic_ids(fresh_demo_api) == {stranger, in_flight, tracked}  # all young

        engine.sweeper.orphans.grace = 0
        assert await engine.sweeper.sweep() == []
        assert synthetic_ids(fresh_demo_api) == {in_flight, tracked}
        assert counts.seen == {"orphan_found": [("signup", "customer")]}
        assert engine.ledger.due(now=float("inf")) == []


@pytest.mark.parametrize(
    "failure",
    [SystemExit(3), KeyboardInterrupt(), RuntimeError("listing down"), "hang"],
    ids=["SystemExit", "KeyboardInterrupt", "RuntimeError", "hang"],
)
async def test_a_failing_or_hanging_listing_is_bounded_logged_and_backed_off(
    settings_for: SettingsFor, fresh_demo_api: str, failure: BaseException | str
) -> None:
    calls = {"n": 0}

    async def broken(j: JanitorContext) -> list[Orphan]:
        calls["n"] += 1
        if failure == "hang":
            await anyio.sleep(60)
        assert isinstance(failure, BaseException)
        raise failure

    settings = settings_for(fresh_demo_api, cleanup_timeout=0.3)
    dead = Ledger(settings.state_dir / LEDGER, owner="dead")
    dead.intend("signup", "customer", new_key("run1"), "run1")
    dead.close()
    async with open_engine(settings, {"signup": customer_suite(broken)}) as engine:
        counts = use_counts(engine.sweeper)
        engine.sweeper.orphans.intent_max_age = 0
        assert engine.ledger.adopt_orphans() == 1
        started = time.monotonic()
        (failed,) = await engine.sweeper.sweep()
        assert time.monotonic() - started < 5
        assert failed.name == "orphans customer"
        if failure == "hang":
            assert failed.message == "timed out after 0.3s"
        else:
            assert type(failure).__name__ in failed.message
        assert await engine.sweeper.sweep() == []  # backing off: not called again yet
        assert calls["n"] == 1
        assert counts.seen == {"listing_failed": [("signup", "customer")]}
        assert len(engine.ledger.unresolved()) == 1  # no evidence: the intent is kept


async def test_a_failing_janitor_of_an_orphan_leaves_a_pending_entry(
    settings_for: SettingsFor, fresh_demo_api: str
) -> None:
    stranger = create_customer(fresh_demo_api, "Synthetic Check")
    suite = customer_suite()

    @suite.janitor("customer")
    async def refuse(j: JanitorContext, r: Resource) -> None:
        raise SystemExit("janitor exits")

    async with open_engine(settings_for(fresh_demo_api), {"signup": suite}) as engine:
        counts = use_counts(engine.sweeper)
        engine.sweeper.orphans.grace = 0
        (failed,) = await engine.sweeper.sweep()
        assert failed.name == f"janitor customer {stranger}"
        (entry,) = engine.ledger.due(now=float("inf"))
        assert (entry.resource_id, entry.attempts) == (stranger, 1)
        assert engine.ledger.due() == []  # backed off
        assert await engine.sweeper.sweep() == []  # held by the ledger now: not listed again
        assert counts.seen == {
            "orphan_found": [("signup", "customer")],
            "cleanup_failed": [("signup", "customer")],
        }
    assert synthetic_ids(fresh_demo_api) == {stranger}


async def test_intents_never_found_are_forgotten_after_their_max_age(
    settings_for: SettingsFor, fresh_demo_api: str, tmp_path: Path
) -> None:
    settings = settings_for(fresh_demo_api)
    dead = Ledger(settings.state_dir / LEDGER, owner="dead")
    dead.intend("signup", "customer", new_key("run1"), "run1")  # the create failed
    dead.intend("gone", "customer", new_key("run2"), "run2")  # a suite no longer loaded
    dead.close()
    async with open_engine(settings, {"signup": customer_suite()}) as engine:
        counts = use_counts(engine.sweeper)
        await sweep_leftovers(engine)
        assert len(engine.ledger.unresolved()) == 2  # young: kept
        engine.sweeper.orphans.intent_max_age = 0
        await engine.sweeper.sweep()
        assert engine.ledger.unresolved() == []
        assert sorted(counts.seen["intent_forgotten"]) == [
            ("gone", "customer"),
            ("signup", "customer"),
        ]


async def test_a_run_does_not_call_a_listing_that_is_backing_off(
    settings_for: SettingsFor,
) -> None:
    calls = {"n": 0}
    suite = Suite("flaky")

    @suite.janitor("thing")
    def delete_thing(j: JanitorContext, r: Resource) -> None: ...

    @suite.orphans("thing")
    def list_things(j: JanitorContext) -> list[Orphan]:
        calls["n"] += 1
        raise RuntimeError("listing down")

    @suite.test
    async def make(t: T) -> None:
        t.intend("thing")
        raise ConnectionError("the create's answer was lost")

    async with open_engine(settings_for(), {"flaky": suite}) as engine:
        (failed,) = await engine.sweeper.sweep()  # fails: backing off from now on
        assert failed.message == "RuntimeError: listing down"
        recorder = Recorder()
        await Coordinator(
            engine=engine, suites={"flaky": suite}, listener=recorder, concurrency=1
        ).run_batch(["flaky"])
        assert recorder.suites[0].janitor_failures == ()
        assert calls["n"] == 1
        assert [e.key.startswith("synthetic-") for e in engine.ledger.unresolved()] == [True]
