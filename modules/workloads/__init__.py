"""The workloads layer (``<env>-workloads``): MLflow, W&B, training, inference servers and agent runtimes."""
