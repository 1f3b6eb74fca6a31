"""The delivery layer (``<env>-delivery``): ECR and the identities of the GitHub Actions workflows."""
