"""What a ``terraform plan`` of our stacks reads in AWS, per resource type (``data/plan_role_reads.yaml``).

The pull-request plan role gets exactly these read actions; the tests check that every resource type and data
source in the synthesized stacks is listed, and that no action hands out data (object contents, secret values,
decryption).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

PLAN_READS_FILE = Path(__file__).with_name("data") / "plan_role_reads.yaml"


class PlanReads(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_types: dict[str, tuple[str, ...]]
    data_sources: dict[str, tuple[str, ...]]
    data_actions: tuple[str, ...]

    @field_validator("resource_types", "data_sources")
    @classmethod
    def _exact_actions(cls, table: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, actions in table.items():
            for action in actions:
                service, _, operation = action.partition(":")
                if not service or not operation or "*" in action or "?" in action:
                    raise ValueError(f"{name}: {action!r} must be one exact action '<service>:<Action>'")
        return table

    def actions(self) -> list[str]:
        """Every read action of the table, sorted, once."""
        return sorted({a for table in (self.resource_types, self.data_sources) for acts in table.values()
                       for a in acts})

    def data_reading(self, granted: str) -> list[str]:
        """The data actions a granted action (or pattern, as IAM matches it: case-insensitive, ``*``/``?``)
        would allow."""
        return [a for a in self.data_actions if fnmatchcase(a.lower(), granted.lower())]


@cache
def plan_reads() -> PlanReads:
    return PlanReads.model_validate(yaml.safe_load(PLAN_READS_FILE.read_text()))
