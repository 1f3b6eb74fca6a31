"""The cluster layer (``<env>-cluster``): EKS, its managed add-ons, and the CPU and GPU node groups."""
