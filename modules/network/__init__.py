"""The network layer (``<env>-network``): the VPC across the environment's zones."""
