"""The repository's GitHub settings (the ``github`` stack): environments, protected branches, the OIDC template."""
