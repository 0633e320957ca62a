"""The Keras job's results: background uploads, resumable state, the sweep's manifest and best pointer, pull,
the TensorBoard mirror. The only code outside trainers/ that reads the job's file layout (trainers.job_files).
Imports cluster.store, cluster.submission and trainers; the launcher reaches it only by name
(hydra.launcher.results)."""
