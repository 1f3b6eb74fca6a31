"""The platform report: GPU capacity and on-demand cost per environment (``make report``), and the architecture
document generated from the synthesized stacks (``make docs``). The numbers come from ``platform_config.report``;
this package reads the synthesized folder and renders."""

from __future__ import annotations

from tools.report.render import brief_report

__all__ = ["brief_report"]
