"""Names that sweeps started before cluster/ had packages pickled into Tune's experiment state (the trial
numbering and the driver-only resources function): importable here, such a sweep still resumes. New sweeps
pickle them from cluster.launcher."""

from cluster.launcher.job_numbers import JobNumbers  # noqa: F401
from cluster.launcher.sweep_plan import InDriver  # noqa: F401
from cluster.launcher.tune_trial import run_trial  # noqa: F401
