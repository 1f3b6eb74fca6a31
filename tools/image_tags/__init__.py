"""New image tags into the GitOps repository: the last link from a pushed image to a running pod.

``python -m tools.image_tags target --env ENV`` prints where the environment's tags live (for $GITHUB_OUTPUT);
``python -m tools.image_tags set --file FILE --matrix JSON`` writes the tag of every image the workflow just
pushed into the tags file Argo CD reads (``platform_config/gitops.py``).
"""
