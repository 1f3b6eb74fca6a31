"""Building blocks that several layers use: KMS keys, service roles, Pod Identity roles, Helm releases,
Kubernetes objects, the cluster providers of the in-cluster layers, and the base of every layer's stack."""
