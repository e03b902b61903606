"""What the bot can do: use cases as plain async functions, authorization inside.

`EXECUTORS` names the code behind each action that needs a person's approval;
the composition root hands it to `Deps.executors`.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.actions import accounts, digest, jobs, schedule, upload
from agent.context import Executor
from agent.ports import TRANSFER_ACTION

EXECUTORS: Mapping[str, Executor] = {
    "unlink": accounts.execute_unlink,
    TRANSFER_ACTION: accounts.execute_transfer,
    "upload": upload.execute_upload,
    "digest": digest.execute_change,
    "digest_membership": digest.execute_membership,
    "cancel": jobs.execute_cancel,
    "reschedule": schedule.execute_reschedule,
    "cancel_scheduled": schedule.execute_cancel,
}
