"""Synth diff: what a change does to the synthesized Terraform, stack by stack, before anyone runs a plan.

``python -m tools.synth_diff diff --base <revision>`` (``make diff BASE=<revision>``) synthesizes the revision and
the working tree and prints the difference; ``diff_synth_folders`` is the same comparison as a pure function of
two synthesized folders. The other subcommands are the small reads of a synthesized folder that the delivery
workflows need (stack order, the plan matrix, role ARNs, the pull-request comment); see ``pipeline``.

It needs no AWS credentials and no Terraform providers, and it reports rather than gates: ``diff`` exits 0 whatever
changes, 1 only when a side cannot be synthesized or read.
"""

from tools.synth_diff.diff import SynthDiff, diff_stacks, diff_synth_folders
from tools.synth_diff.render import render

__all__ = ["SynthDiff", "diff_stacks", "diff_synth_folders", "render"]
