"""Which failures of a trial use up `max_failures`: a crash does; an interruption does not. A trial is
interrupted when its process is told to stop (SIGTERM: a spot VM's preemption, a drained node), when its task
function exits with INTERRUPTED_EXIT_STATUS (stopped on request with its state saved), or when its node dies
(Ray reports an actor on a lost node as unavailable, ActorUnavailableError, or as dead with its node): none says
anything about the trial, and each retry continues from the trial's saved state. A process killed otherwise
(SIGKILL, the OOM killer, a segfault) or an error in the job is a crash. Tune itself leaves
out only the deaths of nodes its autoscaler drained for preemption; `count_only_crashes` extends that rule to
these interruptions (Ray's RAY_TRAIN_COUNT_PREEMPTION_AS_FAILURE=1 counts them all again).
"""

from __future__ import annotations

# EX_TEMPFAIL (sysexits.h), "temporary failure, try again": a task function that stopped on request after
# saving what its retry continues from exits with it.
INTERRUPTED_EXIT_STATUS = 75


class TrialInterrupted(RuntimeError):
    """The trial's task function exited with INTERRUPTED_EXIT_STATUS: retried without counting as a failure."""


def is_interruption(error: BaseException) -> bool:
    """Whether a trial's failure, as Tune received it, is an interruption rather than a crash."""
    from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

    from cluster.private_apis import actor_death_cause

    if isinstance(error, RayTaskError):
        cause = error.cause
        if isinstance(cause, RayActorError) and not isinstance(cause, RayTaskError):
            return is_interruption(cause)  # an actor's death a task saw (Tune unwraps it the same way)
        return isinstance(cause, TrialInterrupted)
    if isinstance(error, ActorUnavailableError):
        return True  # its process became unreachable (how a lost node shows first: the connection to it breaks)
    if isinstance(error, RayActorError):
        return actor_death_cause(error) in ("SIGTERM", "node died")
    return False


def count_only_crashes() -> None:
    """From now on, in this process (the sweep's driver), Tune counts a trial's interruptions as it counts a
    preempted node's: not toward max_failures."""
    from cluster.private_apis import leave_uncounted

    leave_uncounted(is_interruption)
