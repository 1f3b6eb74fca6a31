"""The checkov policy gate over synthesized cdktf output.

``python -m tools.gate [--out cdktf.out]``, run with the checkov environment's Python (``make gate``). For every
stack of ``<out>/manifest.json`` it copies ``cdk.tf.json`` to a scratch folder, prepared so checkov cannot pass
it by accident (explicit JSON nulls stripped, ``terraform.required_version`` removed), runs checkov once over all
stacks with ``policies/checkov.yaml`` and the custom checks of ``policies/checks``, applies the skips of
``policies/skips.yaml``, and fails on any failed check, parsing error, stack without a passed check, stack
missing from the results, or error logged by checkov. It prints a summary and writes ``reports/gate-summary.json``
and ``reports/gate.sarif``.

Modules: ``stacks`` (manifest, preparation, resource addresses), ``policy`` (the files of ``policies/``),
``scan`` (running checkov and reading its output), ``verdict`` (classifying results), ``report`` (summary,
JSON, SARIF), ``cli`` (the command). Only ``scan`` runs checkov, as a subprocess: the rest is plain Python that
the project's tests can import.
"""
