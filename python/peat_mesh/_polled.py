"""The one shape of every subscription read by polling: ``next``, iteration
(``for`` and ``async for``), ``close`` (idempotent), ``with``, and closing at
garbage collection if still open."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator

from . import _native


class ClosesOnExit:
    """Context-manager and finaliser behaviour shared by handle owners: ``close()``
    on ``with`` exit, and at garbage collection if still open."""

    _closed: bool

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass


class Polled(ClosesOnExit):
    """A subscription: subclasses say how to read one event (``_next``)."""

    def __init__(self, handle: int) -> None:
        self._handle = handle
        self._closed = False

    def _next(self, timeout_ms: int) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def next(self, timeout: float = 1.0) -> Any:
        """The next event, waiting up to ``timeout`` seconds; None on timeout.
        Raises ``ClosedError`` once the subscription has ended."""
        return self._next(max(0, int(round(timeout * 1000))))

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                ev = self._next(500)
            except (_native.ClosedError, _native.InvalidHandleError):
                return
            if ev is not None:
                yield ev

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Any]:
        while True:
            try:
                ev = await asyncio.to_thread(self._next, 250)
            except (_native.ClosedError, _native.InvalidHandleError):
                return
            if ev is not None:
                yield ev

    def close(self) -> None:
        """Ends the subscription; nothing is delivered after it returns. Idempotent."""
        if not self._closed:
            self._closed = True
            try:
                _native.unsubscribe(self._handle)
            except _native.InvalidHandleError:
                pass

    def __enter__(self) -> "Polled":
        return self
