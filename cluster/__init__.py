"""Everything that runs a job on Ray and keeps its results; it knows nothing of Keras internals.
One package per job, imports going down only (tests/unit/test_import_rules.py checks this):

    launcher/     Hydra launcher and sweeper on Ray Tune, generic: imports store, submission, private_apis;
                  never trainers/ or results/, and names no app (the app passes its hints in hydra.launcher)
    submission/   a checked sweep shipped to a Ray cluster as a Ray job, and `jobs`: imports store
    results/      the Keras job's results (uploads, resumable state, pull, TensorBoard mirror, the sweep's
                  manifest) and its inputs from buckets (checks, the node's data cache, push): the only code
                  outside trainers/ that reads the job's file layout; imports store, submission, private_apis,
                  trainers.job_files / trainers.export, and trainers.schema / trainers.class_folders /
                  trainers.csv_files (the app's validation around the bucket checks, what a class folder holds,
                  how a CSV's header splits)
    store/        the object store (local folder or GCS), its pointers and sweep names: imports nothing here
    definitions/  checks of the cluster definitions beside this file (gcp-gpu.yaml, kuberay/, pinned
                  requirements): imports private_apis
    private_apis  the private Hydra, Ray and google-cloud APIs used here, in one place
                  (tests/launcher/test_private_apis.py)
"""

import importlib
import importlib.abc
import importlib.util
import sys

# Sweeps started before the packages above existed pickled classes and functions under the old module names
# into Tune's experiment state (the trial numbering, the driver-only resources, PBT's explore function): each
# old name imports its module's new home, so such a sweep still resumes.
MOVED = {f"cluster.{name}": f"cluster.launcher.{name}" for name in (
    "job_catalog", "job_configs", "job_numbers", "leaderboard", "node_paths", "pbt_handover", "progress", "ray_session",
    "resources", "search_space", "sweep_books", "sweep_folder", "sweep_pipeline", "sweep_plan", "sweep_spec",
    "trial_context", "trial_record", "trial_results", "tune_trial", "tuner")}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass


sys.meta_path.append(_MovedModules())
