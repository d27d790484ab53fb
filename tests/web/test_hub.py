"""The hub's per-client filtering and its answer to a client that lags."""

from __future__ import annotations

from infrawatch.core.events import Event
from infrawatch.web.hub import CLIENT_QUEUE, Client, allowed_pattern


def test_topics_and_monitor_filter() -> None:
    client = Client(patterns=("monitoring.*",), monitor_ids=frozenset({"a"}))
    client.offer(Event("inventory.server.created", {"id": "s"}))
    client.offer(Event("monitoring.results", {"results": [{"id": "b"}]}))
    assert client.queue.empty()
    client.offer(Event("monitoring.results", {"results": [{"id": "a"}, {"id": "b"}]}))
    message = client.queue.get_nowait()
    assert message["type"] == "event" and message["payload"] == {"results": [{"id": "a"}]}


def test_a_lagging_client_is_told_to_resync() -> None:
    client = Client(patterns=("*",))
    for i in range(CLIENT_QUEUE + 5):
        client.offer(Event("jobs.event", {"seq": i}))
    # What waited is dropped for one resync message; what came after it follows.
    assert client.queue.get_nowait() == {"type": "resync", "reason": "the connection fell behind"}
    rest = [client.queue.get_nowait()["payload"]["seq"] for _ in range(client.queue.qsize())]
    assert rest == [CLIENT_QUEUE + 1, CLIENT_QUEUE + 2, CLIENT_QUEUE + 3, CLIENT_QUEUE + 4]


def test_only_readable_topics_may_be_subscribed() -> None:
    assert allowed_pattern("monitoring.*") and allowed_pattern("jobs.event")
    assert not allowed_pattern("*") and not allowed_pattern("accounts.secret")


def test_a_client_gets_what_it_missed_or_is_told_to_reload() -> None:
    from datetime import timedelta

    from infrawatch.core.clock import utcnow
    from infrawatch.core.events import EventBus
    from infrawatch.web.hub import Hub

    hub = Hub(EventBus())
    started = utcnow()
    hub.complete_since = started
    before, after = Event("inventory.server.created", {"name": "old"}), None
    after = Event("inventory.server.created", {"name": "new"})
    object.__setattr__(before, "at", started + timedelta(seconds=1))
    object.__setattr__(after, "at", started + timedelta(seconds=3))
    hub.recent.extend([before, after])

    client = Client(patterns=("inventory.*",))
    assert hub.replay(client, started + timedelta(seconds=2))
    assert [client.queue.get_nowait()["payload"]["name"]] == ["new"]
    assert client.queue.empty()
    # Older than what the hub has seen since it started: it cannot know.
    assert not hub.replay(Client(patterns=("*",)), started - timedelta(seconds=1))
