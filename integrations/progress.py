"""Upload progress as people see it: a report at each further tenth of the bytes, for
every platform's uploader.

The callback belongs to whoever asked for the upload. A failure of its own (a chat
message that could not be edited) is cosmetic and never breaks the upload; an
`IntegrationError` it raises is its way of stopping the upload (the job was cancelled:
`agent.jobs.upload.UploadCancelled`) and goes through to the caller.
"""

from __future__ import annotations

import logging

from integrations.base import ProgressCallback
from integrations.errors import IntegrationError

log = logging.getLogger(__name__)


class Deciles:
    """Calls the progress callback when confirmed bytes cross each further 10 %."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._next = 1

    async def __call__(self, confirmed: int) -> None:
        if self._callback is None or self._total <= 0:
            return
        decile = confirmed * 10 // self._total
        if decile < self._next:
            return
        self._next = decile + 1
        try:
            await self._callback(confirmed, self._total)
        except IntegrationError:  # the owner stops the upload
            raise
        except Exception:  # progress is cosmetic; it never breaks an upload
            log.warning("progress callback failed", exc_info=True)
