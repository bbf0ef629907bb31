"""A local Kubernetes API stand-in for exercising dagster-k8s without a cluster."""
