"""The Hydra launcher and sweeper on Ray Tune (hydra_plugins/ray_tune_launcher is its shim): one Tune trial per
Hydra job, grid or search. Generic: imports cluster.store, cluster.submission and cluster.private_apis, never
trainers/ or cluster.results; what it needs of an app arrives through hydra.launcher (settings.py)."""
