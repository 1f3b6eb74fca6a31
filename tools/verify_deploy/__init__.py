"""Verify a deploy: wait until what the in-cluster layers applied is running, or say what is not.

After the platform and workloads layers apply, ``python -m tools.verify_deploy --env <env>`` waits for:

- every Deployment, StatefulSet and DaemonSet in the namespaces the platform manages to be rolled out and ready;
- every Argo CD Application the platform declares (the root "app of apps") to be Synced and Healthy;
- every GPU node that exists to advertise the GPU resources its pool promises (time-sliced ``nvidia.com/gpu``
  replicas, ``nvidia.com/mig-<profile>`` slices), computed from the environment file by the same function that
  writes the Cluster Autoscaler's node templates.

It exits 0 when all hold, or 1 after the timeout, printing one line per thing that is not ready. The checks are
pure functions of ``kubectl get ... -o json`` output (``checks.py``), tested on recorded output.
"""

from tools.verify_deploy.checks import ClusterState, problems

__all__ = ["ClusterState", "problems"]
