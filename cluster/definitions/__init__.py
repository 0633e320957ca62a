"""Offline checks of the cluster definitions kept in cluster/ (gcp-gpu.yaml, kuberay/, requirements-cluster.txt).
Imports cluster.private_apis only."""
