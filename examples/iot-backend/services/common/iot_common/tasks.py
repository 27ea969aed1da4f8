"""A service's background worker: one asyncio task from start() until stop()."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundTask:
    """Runs `_run` as one asyncio task; subclasses write `_run` (loop until cancelled)."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start `_run` in the running event loop."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Cancel the task and wait for it to end (what it was doing when cancelled is left undone)."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        raise NotImplementedError
