"""The checkov policy gate over synthesized cdktf output.

``python -m tools.gate [--out cdktf.out]``, run with the checkov environment's Python (``make gate``). For every
stack an environment file and layer ask for (``platform_config/layers.py``) it copies ``cdk.tf.json`` to a scratch
folder, prepared so checkov cannot pass it by accident (explicit JSON nulls stripped, ``terraform.required_version``
removed, policy documents written as JSON strings parsed, GitHub OIDC ``Federated`` references resolved), runs
checkov once over all stacks (terraform_json with ``policies/checkov.yaml`` and the custom checks of
``policies/checks``, and the secrets framework over the Helm values and Secret data it extracts), runs the checks
that join resources (``policies/joined_checks.py``), applies the skips of ``policies/skips.yaml``, and fails on any
failed check, parsing error, missing, extra or unreadable stack, stack without a passed check, or error logged by
checkov. It prints a summary and writes ``reports/gate-summary.json`` and ``reports/gate.sarif``.

Modules: ``stacks`` (manifest, preparation, resource addresses), ``expected`` (the stacks the environments ask
for), ``policy`` (the files of ``policies/``), ``scan`` (running checkov and reading its output), ``checkov_main``
(checkov's command line with policy documents kept whole), ``verdict`` (classifying results), ``report``
(summary, JSON, SARIF), ``cli`` (the command). Only ``scan`` runs checkov, as a subprocess: the rest is plain
Python that the project's tests can import.
"""
