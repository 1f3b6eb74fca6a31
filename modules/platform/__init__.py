"""The platform layer (``<env>-platform``): the in-cluster services every workload relies on."""
