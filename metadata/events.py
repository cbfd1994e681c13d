"""The seam between the index and whoever shows progress (ComfyUI's websocket, a CLI, a test).

`nodes/` passes an adapter over `PromptServer.instance.send_sync`; the index never imports
ComfyUI and never fails a scan because an event could not be delivered.
"""
from __future__ import annotations

from typing import Any, Protocol

PROGRESS_EVENT = "intelligent.progress"


class EventSink(Protocol):
    def send(self, event: str, data: dict[str, Any]) -> None:
        """Deliver `event` with its JSON-serialisable `data` (fire and forget)."""
        ...
