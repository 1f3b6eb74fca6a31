"""The packages read in one direction: the import contracts of pyproject.toml ([tool.importlinter]) hold.

The contracts are checked by import-linter on the real source tree. A second test copies ``platform_config`` into a
scratch folder, puts back an import from the models to a rule built on them (the W&B server rules, which read the
node labels through the GPU sharing rules, which read the models), and shows that the same contracts break.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(project / "pyproject.toml")],
                          cwd=project, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"})


def test_every_import_contract_of_the_project_is_kept():
    result = run_lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def project_with_a_circle(tmp_path: Path) -> Path:
    """A copy of the packages with the old circle: the models import the W&B server rules, and those read the pool
    label from the GPU sharing rules, which import the models."""
    for package in ("platform_config", "modules", "tools"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    models = tmp_path / "platform_config" / "models.py"
    source = models.read_text()
    assert "from platform_config.wandb_settings import WandbServer\n" in source
    models.write_text(source.replace("from platform_config.wandb_settings import WandbServer\n",
                                     "from platform_config.wandb_server import WandbServer\n"))
    rules = tmp_path / "platform_config" / "wandb_server.py"
    rules.write_text(rules.read_text().replace("from platform_config.node_labels import CPU_POOL, POOL_LABEL\n",
                                               "from platform_config.gpu_sharing import POOL_LABEL\n"
                                               "from platform_config.node_labels import CPU_POOL\n"))
    return tmp_path


def test_an_import_from_the_models_to_a_rule_built_on_them_breaks_the_contracts(project_with_a_circle):
    result = run_lint_imports(project_with_a_circle)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "platform_config.models is not allowed to import platform_config.wandb_server" in result.stdout
    assert "No cycles are allowed in platform_config" in result.stdout
