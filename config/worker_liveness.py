"""Prompt redelivery of a dead worker's messages on the Redis broker (DESIGN.md §6, §10).

kombu's Redis transport emulates acknowledgement: a delivered message waits in the `unacked`
hash, indexed by delivery time in the `unacked_index` sorted set, until its consumer acks it. A
message whose worker died without acking (SIGKILL, a lost machine) goes back to its queue only
once it is older than the visibility timeout, which must exceed every task's time limit: hours.

So every worker records, every WORKER_HEARTBEAT_SECONDS, the delivery tags it holds and the time
it took that list (`attune_worker_deliveries` hash), and when it last recorded, by the Redis
server's clock (`attune_workers` sorted set). A worker that has not recorded for
WORKER_LIVENESS_SECONDS is dead. After each record a worker restores the orphans: messages in
`unacked` that no live worker lists although every live worker took its list at least
`margin` seconds after the message was delivered.

Why a live worker's message is never restored: a worker puts a tag in `unacked`, stamped with
its own clock, and in its channel's `_delivered` within the Redis round trip that does so (less
than `margin`); it lists the tag in every record it takes after that until it acks. Its record
taken at `at` >= delivery + margin, on the same clock, therefore lists the tag. A starting
worker records before it consumes anything, so no live worker is without a record. What can
still run a task twice is a live worker that cannot record for WORKER_LIVENESS_SECONDS (cut off
from Redis, frozen) while another can: the trade every visibility timeout makes, here at 30 s
instead of 2 h, and the tasks are idempotent (DESIGN.md §6). Workers of a release without this
module record nothing: during a rolling upgrade their unacked messages count as orphans.

Restoring is kombu's `QoS.restore_by_tag`, a WATCHed transaction: a message goes back once
however many workers restore it at the same moment, and not at all once acked. kombu's
visibility timeout stays as the backstop. Only the commands kombu prefixes with a
`global_keyprefix` are used, so the records live beside the queues they describe.
"""

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, MutableSet
from typing import Any

from celery.worker import state
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from kombu.utils.encoding import bytes_to_str

logger = logging.getLogger(__name__)

WORKERS_KEY = "attune_workers"
DELIVERIES_KEY = "attune_worker_deliveries"
# At most this many messages go back per round; the next round takes the rest.
RESTORE_LIMIT = 1000


def _text(value: bytes | str) -> str:
    return bytes_to_str(value)


def _snapshot(requests: MutableSet[Any]) -> list[Any]:
    """The requests of a WeakSet the consumer thread changes meanwhile."""
    for _ in range(10):
        try:
            return list(requests)
        except RuntimeError:  # "Set changed size during iteration"
            continue
    return list(requests)


class WorkerLiveness:
    """One worker process's record, and its sweep for the messages of dead workers."""

    def __init__(self, consumer: Any) -> None:
        heartbeat = float(settings.WORKER_HEARTBEAT_SECONDS)
        liveness = float(settings.WORKER_LIVENESS_SECONDS)
        if heartbeat <= 0 or liveness < 3 * heartbeat:
            raise ImproperlyConfigured(
                "WORKER_LIVENESS_SECONDS must be at least three WORKER_HEARTBEAT_SECONDS, so "
                "that a late record does not make a live worker look dead."
            )
        self.consumer = consumer
        self.heartbeat = heartbeat
        self.liveness = liveness
        options = consumer.app.conf.broker_transport_options or {}
        # Longer than kombu can take between stamping a delivery and holding it in memory:
        # one Redis round trip, bounded by the socket timeout.
        self.margin = max(5.0, 2 * float(options.get("socket_timeout") or 0))
        self.name = f"{consumer.hostname}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        # A connection of its own: kombu channels are not shared between threads.
        self.connection = consumer.app.connection_for_write()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def channel(self) -> Any:
        return self.connection.default_channel

    def held_tags(self) -> set[str]:
        """Every delivery tag this process holds: the task channel's unacked deliveries
        (including ETA and retry messages waiting in the timer), and the requests still
        reserved or running, whose channel a reconnection may have replaced."""
        tags: set[str] = set()
        task_consumer = getattr(self.consumer, "task_consumer", None)
        qos = getattr(getattr(task_consumer, "channel", None), "_qos", None)
        if qos is not None:
            # A copy in one C call, which the consumer thread cannot interleave.
            tags.update(_text(tag) for tag in list(qos._delivered))
        for request in _snapshot(state.reserved_requests) + _snapshot(state.active_requests):
            message = getattr(request, "message", None)
            if message is not None and message.delivery_tag is not None:
                tags.add(_text(message.delivery_tag))
        return tags

    def record(self) -> None:
        # The time first: the list taken after it holds every delivery stamped before it.
        at = time.time()
        tags = sorted(self.held_tags())
        client = self.channel.client
        seconds, microseconds = client.time()
        pipe = client.pipeline()
        pipe.zadd(WORKERS_KEY, {self.name: seconds + microseconds / 1e6})
        pipe.hset(DELIVERIES_KEY, self.name, json.dumps({"at": at, "tags": tags}))
        pipe.execute()

    def forget_dead(self, client: Any, cutoff: float) -> None:
        """Drop the records of workers silent since `cutoff` (server time), unless one of them
        records again meanwhile (the WATCH)."""

        def prune(pipe: Any) -> None:
            dead = [_text(name) for name in pipe.zrange(WORKERS_KEY, 0, cutoff, byscore=True)]
            pipe.multi()
            if dead:
                pipe.zrem(WORKERS_KEY, *dead)
                for name in dead:
                    pipe.hdel(DELIVERIES_KEY, name)

        client.transaction(prune, WORKERS_KEY)

    def orphans(self) -> list[str]:
        """Delivery tags in `unacked` that no live worker holds."""
        client = self.channel.client
        seconds, microseconds = client.time()
        cutoff = seconds + microseconds / 1e6 - self.liveness
        members = client.zrange(WORKERS_KEY, 0, -1, withscores=True)
        live = [_text(name) for name, score in members if score > cutoff]
        if len(live) < len(members):
            self.forget_dead(client, cutoff)
        if self.name not in live:
            return []  # our own record did not land: nothing is known for sure this round
        pipe = client.pipeline(transaction=False)
        for name in live:
            pipe.hget(DELIVERIES_KEY, name)
        records = [json.loads(raw) for raw in pipe.execute() if raw is not None]
        if len(records) < len(live):
            return []  # a worker's list is missing; it may hold anything
        held: set[str] = set().union(*(record["tags"] for record in records))
        ceiling = min(record["at"] for record in records) - self.margin
        qos = self.channel.qos
        candidates = client.zrange(
            qos.unacked_index_key, 0, ceiling, byscore=True, offset=0, num=RESTORE_LIMIT
        )
        return [tag for tag in map(_text, candidates) if tag not in held]

    def restore(self, tags: Iterable[str]) -> int:
        client = self.channel.client
        qos = self.channel.qos
        restored = 0
        for tag in tags:
            raw = client.hget(qos.unacked_key, tag)
            if raw is None:
                continue  # acked or restored meanwhile
            payload = json.loads(_text(raw))[0]
            headers = payload.get("headers") or {}
            qos.restore_by_tag(tag, client=client)
            restored += 1
            logger.warning(
                "delivered again the message of a dead worker: %s[%s]",
                headers.get("task"),
                headers.get("id"),
            )
        return restored

    def round(self) -> None:
        self.record()
        self.restore(self.orphans())

    def start(self) -> None:
        """Record once before the worker consumes anything, then every heartbeat in a thread
        (a thread, because the solo pool blocks the event loop while a task runs)."""
        while not self.stopped.is_set():
            try:
                self.round()
                break
            except (*self.connection.connection_errors, OSError) as exc:
                logger.warning("worker liveness: cannot record yet (%s); retrying", exc)
                self.reconnect()
                self.stopped.wait(self.heartbeat)
        self.thread = threading.Thread(target=self.run, name="worker-liveness", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped.wait(self.heartbeat):
            try:
                self.round()
            except Exception:
                # Whatever went wrong, the thread must keep recording: a worker whose thread
                # died would look dead and have its running tasks delivered again.
                logger.warning("worker liveness round failed", exc_info=True)
                self.reconnect()

    def reconnect(self) -> None:
        """A fresh connection for the next round; the old one may be half-broken."""
        try:
            self.connection.collect()
        finally:
            self.connection = self.connection.clone()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=self.heartbeat + 5)


def worker_liveness_start(consumer: Any) -> WorkerLiveness | None:
    """For a worker on the Redis broker; other transports keep their own semantics."""
    if consumer.app.connection_for_write().transport.driver_type != "redis":
        return None
    liveness = WorkerLiveness(consumer)
    liveness.start()
    logger.info("worker liveness recorded as %s", liveness.name)
    return liveness
