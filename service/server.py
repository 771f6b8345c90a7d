"""uvicorn with a drain step: the first SIGTERM takes the instance out of rotation before closing it.

Kubernetes keeps routing to a pod for a moment after SIGTERM, so the instance first reports ``/readyz``
503 while still serving, for ``server.drain_grace_s``; then uvicorn's own graceful exit stops accepting,
waits for in-flight requests and runs the lifespan shutdown. A second signal exits at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import FrameType

import uvicorn


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce_shutdown: Callable[[], None], grace_s: float) -> None:
        super().__init__(config)
        self.announce_shutdown, self.grace_s = announce_shutdown, grace_s
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.announce_shutdown()
        if self._announced or self.grace_s <= 0:
            super().handle_exit(sig, frame)
            return
        self._announced = True
        timer = threading.Timer(self.grace_s, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()
