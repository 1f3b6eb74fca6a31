"""The platform's custom checkov checks (ids CKV_PLAT_n for Python checks, CKV2_PLAT_n for graph checks).

checkov loads every ``.py`` and ``.yaml`` file of this folder through ``--external-checks-dir``; it loads the
Python files only because this ``__init__.py`` exists (without it they are skipped with an INFO log and the
gate would pass without them). Each check states why it matters in its ``guideline``, which the gate prints
next to a failure. Run them through ``make gate`` (tools/gate), never checkov alone: cdktf output needs
preparing first (explicit nulls, ``terraform.required_version``).
"""
