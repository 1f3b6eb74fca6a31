"""Names the node pools are known by in Kubernetes: labels, the GPU taint, the GPU resource and the CPU pool.

The bottom of the configuration core: it imports nothing, so the models, the GPU sharing rules, the workloads and
the W&B server can all read the same names.
"""

#: The node pool every platform service runs on unless it needs a GPU.
CPU_POOL = "cpu"

#: Our own label: which pool a node belongs to. Workloads select pools by it (the NVIDIA product label gets a
#: ``-SHARED`` suffix under time-slicing, so it is no good for selection).
POOL_LABEL = "mlops-platform/pool"
GPU_MODEL_LABEL = "mlops-platform/gpu-model"
GPU_SHARING_LABEL = "mlops-platform/gpu-sharing"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
#: The Cluster Autoscaler on AWS treats nodes with this label as GPU nodes; MIG nodes (mixed strategy) have no
#: allocatable nvidia.com/gpu, so without it the autoscaler would not see them as GPU nodes.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
#: The EKS API spells the effect NO_SCHEDULE; Kubernetes (and the autoscaler's node-template tag) NoSchedule.
GPU_TAINT_EFFECT = "NO_SCHEDULE"
GPU_TAINT_EFFECT_KUBERNETES = "NoSchedule"
