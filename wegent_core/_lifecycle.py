"""The task state machine: every status change of a task and a subtask goes through `task_transition` or
`subtask_transition`, so the allowed transitions live here and nowhere else (upstream reference section 4).

    PENDING ──► RUNNING ──► COMPLETED ─┐
       │           │  ├──► FAILED ─────┤ follow-up ──► PENDING
       │           │  ├──► PENDING_CONFIRMATION ──(confirm / follow-up)──► PENDING
       │           │  └──► PENDING (a pipeline advances to its next stage)
       └───────────┴──► CANCELLING ──► CANCELLED ─┘
                                 └──► FAILED
    any status ──► DELETE (absorbing)

Two rules make it safe under every interleaving:

* A finished task (COMPLETED, FAILED, CANCELLED) changes only by a user's command: a follow-up message reopens it.
  Whatever a runtime reports late (a completion after a cancel, say) is refused, so CANCELLED is sticky.
* From CANCELLING only CANCELLED or FAILED follow (as upstream's `update_task` guard).
"""

from __future__ import annotations

from ._errors import WegentError
from ._resources import SubtaskState, TaskState

T = TaskState
S = SubtaskState

FINISHED = frozenset({T.COMPLETED, T.FAILED, T.CANCELLED, T.DELETE})
ACTIVE = frozenset({T.PENDING, T.RUNNING, T.CANCELLING})
WAITING = frozenset({T.PENDING_CONFIRMATION})
REST = FINISHED | WAITING  # nothing runs the task until a command does (a follow-up, a confirmation)
FOLLOW_UP_FROM = frozenset({T.COMPLETED, T.FAILED, T.CANCELLED, T.PENDING_CONFIRMATION})  # as upstream allows
CANCELLABLE = frozenset({T.PENDING, T.RUNNING, T.PENDING_CONFIRMATION})

_TASK: dict[TaskState, frozenset[TaskState]] = {
    T.PENDING: frozenset({T.RUNNING, T.CANCELLING, T.CANCELLED, T.FAILED, T.DELETE}),
    T.RUNNING: frozenset(
        {T.PENDING, T.PENDING_CONFIRMATION, T.COMPLETED, T.FAILED, T.CANCELLING, T.CANCELLED, T.DELETE}
    ),
    T.PENDING_CONFIRMATION: frozenset({T.PENDING, T.COMPLETED, T.CANCELLING, T.CANCELLED, T.DELETE}),
    T.CANCELLING: frozenset({T.CANCELLED, T.FAILED, T.DELETE}),
    T.COMPLETED: frozenset({T.PENDING, T.DELETE}),  # PENDING: a follow-up message only
    T.FAILED: frozenset({T.PENDING, T.DELETE}),
    T.CANCELLED: frozenset({T.PENDING, T.DELETE}),
    T.DELETE: frozenset(),
}

_SUBTASK: dict[SubtaskState, frozenset[SubtaskState]] = {
    S.PENDING: frozenset({S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLED, S.DELETE}),
    S.RUNNING: frozenset({S.PENDING, S.PENDING_CONFIRMATION, S.COMPLETED, S.FAILED, S.CANCELLED, S.DELETE}),
    S.PENDING_CONFIRMATION: frozenset({S.COMPLETED, S.CANCELLED, S.DELETE}),
    S.COMPLETED: frozenset({S.DELETE}),
    S.FAILED: frozenset({S.DELETE}),
    S.CANCELLED: frozenset({S.DELETE}),
    S.DELETE: frozenset(),
}
# RUNNING -> PENDING for a subtask: a step whose process died is run again on resume (at least once per step).


class TransitionError(WegentError):
    """A status change the state machine does not allow; the status is left as it was."""


def task_transition(current: TaskState, target: TaskState, *, follow_up: bool = False) -> TaskState:
    """`target` if a task may go there from `current`, else `TransitionError`. A finished task reopens (to
    PENDING) only for a follow-up message."""
    if target == current:
        return current
    if target not in _TASK[current] or (current in FINISHED and target is T.PENDING and not follow_up):
        raise TransitionError(f"a task cannot go from {current} to {target}")
    return target


def can_task_transition(current: TaskState, target: TaskState, *, follow_up: bool = False) -> bool:
    try:
        task_transition(current, target, follow_up=follow_up)
    except TransitionError:
        return False
    return True


def subtask_transition(current: SubtaskState, target: SubtaskState) -> SubtaskState:
    if target != current and target not in _SUBTASK[current]:
        raise TransitionError(f"a subtask cannot go from {current} to {target}")
    return target


def is_finished(status: TaskState) -> bool:
    return status in FINISHED
