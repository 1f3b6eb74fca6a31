"""Small synthesized-folder look-alikes for the gate's tests: cdktf's folder shape (manifest.json and
stacks/<name>/cdk.tf.json) with one security group per stack, and the folder of accidents the gate must not miss."""

from __future__ import annotations

import json
from pathlib import Path

OPEN_SSH_INGRESS = {"cidr_blocks": ["0.0.0.0/0"], "description": "ssh from anywhere", "from_port": 22,
                    "protocol": "tcp", "to_port": 22}
#: What cdktf writes for the optional attributes a rule does not set.
CDKTF_NULLS = {"ipv6_cidr_blocks": None, "prefix_list_ids": None, "security_groups": None, "self": None}


def security_group_stack(*, ingress: dict, required_version: str | None = None) -> dict:
    terraform = {"required_providers": {"aws": {"source": "aws", "version": "6.25.0"}}}
    if required_version:
        terraform["required_version"] = required_version
    return {
        "provider": {"aws": [{"region": "us-east-1"}]},
        "resource": {"aws_security_group": {"bastion": {
            "description": "bastion", "name": "bastion", "vpc_id": "vpc-0123", "ingress": [ingress],
            "egress": [{"cidr_blocks": ["10.0.0.0/8"], "description": "vpc", "from_port": 443, "protocol": "tcp",
                        "to_port": 443}]}}},
        "terraform": terraform,
    }


def write_synth_folder(root: Path, documents: dict[str, dict | None]) -> Path:
    """A folder shaped like cdktf's output: manifest.json and stacks/<name>/cdk.tf.json. A None document is
    listed in the manifest but has no file."""
    manifest = {"stacks": {}, "version": "0.21.0"}
    for name, document in documents.items():
        relative = f"stacks/{name}/cdk.tf.json"
        manifest["stacks"][name] = {"name": name, "synthesizedStackPath": relative,
                                    "workingDirectory": f"stacks/{name}"}
        if document is not None:
            (root / relative).parent.mkdir(parents=True)
            (root / relative).write_text(json.dumps(document, indent=2, sort_keys=True))
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def write_accident_folder(root: Path) -> Path:
    """The mistakes that made an earlier gate pass by accident, one per stack."""
    root.mkdir(parents=True, exist_ok=True)
    return write_synth_folder(root, {
        # (a) an SSH rule open to the internet, with the explicit nulls cdktf writes
        "dev-nulls": security_group_stack(ingress={**OPEN_SSH_INGRESS, **CDKTF_NULLS}),
        # (b) the same rule in a stack that declares terraform.required_version
        "dev-required-version": security_group_stack(ingress=OPEN_SSH_INGRESS, required_version=">= 1.10"),
        # (c) stacks of the manifest that give no result: one without resources, one whose file is missing
        "dev-empty": {"output": {"vpc_id": {"value": "vpc-0123"}}, "terraform": {}},
        "dev-missing": None,
    })
