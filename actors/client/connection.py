"""The client's connection on one event loop: how a task message is wired and published."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.client import children
from actors.client.events import publish_sent
from actors.client.result_waiter import ResultWaiter
from actors.client.router import Router
from actors.errors import EncodeError, MessageTooLarge
from actors.middleware import Hooks
from actors.nats.broker import Broker
from actors.wire.message import TaskMessage, encode
from actors.wire.timing import destination


@dataclass(slots=True)
class Connection:
    """The client's connection on one event loop: a broker, and the result waiter on it."""

    broker: Broker
    results: ResultWaiter
    router: Router
    hooks: Hooks = field(default_factory=Hooks)

    async def send(
        self, message: TaskMessage, msg_id: str | None = None, expect_result: bool = True
    ) -> None:
        """Publish a task message (msgpack). ``msg_id`` defaults to the message's own
        (``message.msg_id``), else its task id.

        ``expect_result=False`` for tasks whose result is not stored.
        """
        subject, body, headers = self.wire(message, msg_id)
        if expect_result:
            self.results.sent(message.id)
        ack = await self.broker.publish(subject, body, headers)
        if expect_result and ack.duplicate:
            self.results.resent(message.id)
        self.hooks.after_publish(message, subject)
        children.add(message.id)
        if self.broker.settings.task_send_sent_event:
            await publish_sent(self.broker, [message])

    async def send_many(self, messages: list[TaskMessage]) -> None:
        """Publish task messages pipelined (workflows); each is stored once by its msg id."""
        wired = [self.wire(message) for message in messages]
        for message in messages:
            if message.ignore_result is not True:
                self.results.sent(message.id)
        await self.broker.publish_many(wired)
        for message, (subject, _, _) in zip(messages, wired, strict=True):
            self.hooks.after_publish(message, subject)
            children.add(message.id)
        if self.broker.settings.task_send_sent_event:
            await publish_sent(self.broker, messages)

    def wire(
        self, message: TaskMessage, msg_id: str | None = None
    ) -> tuple[str, bytes, dict[str, str]]:
        """Subject, body and headers of ``message``; EncodeError or MessageTooLarge when it
        cannot be sent. Safe from any thread (reads settings and the server's limit only).
        Calls the ``before_publish`` hooks first, which may add ``message.headers``."""
        self.router.route(message)  # before the subject is chosen: queue and band name it
        subject, headers = destination(message, msg_id or message.msg_id or message.id)
        self.hooks.before_publish(message, subject)
        try:
            body = encode(message.to_wire())
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(
                f"arguments of {message.task} cannot be sent: {exc}; use msgpack types "
                "(None, bool, int, float, str, bytes, list, dict) or datetime, date, time, "
                'UUID, Decimal and signatures (docs/protocol.md, "Argument types")'
            ) from None
        limit = self.broker.settings.max_message_bytes
        if len(body) > limit:
            raise MessageTooLarge(
                f"message for {message.task} is {len(body)} bytes, over max_message_bytes="
                f"{limit}; pass a reference (a key, a URL) instead of the data",
                len(body),
                limit,
            )
        self.broker.check_size(subject, body, headers)  # MessageTooLarge, headers counted
        return subject, body, headers
