"""The buttons of a scheduled post (in `queue`, and on the note that it failed).

One place for which commands they stand for: `agent.actions.schedule` lists them per
row and `agent.jobs.upload` puts them on a failure note (it cannot import the action
module, which imports it).
"""

from __future__ import annotations

from agent.layout import Action

RETRY_IN = "1m"


def post_actions(run_id: int, *, failed: bool = False) -> tuple[Action, ...]:
    """A scheduled post's buttons: the commands they stand for, run as whoever clicks.

    A failed post cannot be cancelled (nothing will be published): "Retry" tries it
    again a minute from now, through approval like any `reschedule`. "Reschedule"
    needs a time a button cannot know: its click answers with the command to complete."""
    reschedule = Action("Reschedule", f"reschedule {run_id}", more="<when>")
    if failed:
        return (Action("Retry", f"reschedule {run_id} in {RETRY_IN}"), reschedule)
    return (Action("Cancel", f"cancel {run_id}"), reschedule)
