"""Everything that runs a job on Ray and keeps its results; it knows nothing of Keras internals.
One package per job, imports going down only (tests/unit/test_import_rules.py checks this):

    launcher/     Hydra launcher and sweeper on Ray Tune, generic: imports store, submission, private_apis;
                  never trainers/ or results/, and names no app (the app passes its hints in hydra.launcher)
    submission/   a checked sweep shipped to a Ray cluster as a Ray job, and `jobs`: imports store
    results/      the Keras job's results (uploads, resumable state, pull, TensorBoard mirror, the sweep's
                  manifest): the only code outside trainers/ that reads the job's file layout; imports
                  store, submission, trainers.job_files / trainers.export
    store/        the object store (local folder or GCS), its pointers and sweep names: imports nothing here
    definitions/  checks of the cluster definitions beside this file (gcp-gpu.yaml, kuberay/, pinned
                  requirements): imports private_apis
    private_apis  the private Hydra and Ray APIs the launcher needs, in one place (tests/launcher/test_private_apis.py)
"""
