"""Run one request's work under its deadline, and give up as soon as the client disconnects.

Giving up means cancelling: the cancellation reaches the batchers' futures, whose rows then leave the
queue before inference, so neither an expired request nor a vanished client costs accelerator time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from service.errors import ClientDisconnected, DeadlineExceeded

T = TypeVar("T")
Receive = Callable[[], Awaitable[dict[str, Any]]]


async def run_until_deadline(
    work: Coroutine[Any, Any, T], deadline: float, receive: Receive, budget_ms: float
) -> T:
    """``work``'s result; :class:`DeadlineExceeded` at ``deadline`` (loop time); :class:`ClientDisconnected`
    when the ASGI ``receive`` channel reports ``http.disconnect`` first. Errors of ``work`` propagate."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        done, _ = await asyncio.wait(
            {task, gone}, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if gone in done:
        raise ClientDisconnected("the client disconnected")
    raise DeadlineExceeded(f"the {budget_ms:.0f} ms budget passed")


async def wait_for_disconnect(receive: Receive) -> None:
    """After the body has been read, an ASGI server's ``receive`` only returns to report a disconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
