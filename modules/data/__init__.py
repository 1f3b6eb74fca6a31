"""The data layer (``<env>-data``): buckets, EFS, databases, secrets and the workloads' identities."""
