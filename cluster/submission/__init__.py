"""A sweep checked by the launcher, shipped to a Ray cluster as one Ray job, and `jobs` (list, follow, stop).
Imports cluster.store and cluster.private_apis only."""
