"""Running checkov once over every prepared stack, and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from tools.gate.policy import FRAMEWORK, Policies
from tools.gate.stacks import GateError

#: Environment variables that change what checkov checks or reports (CKV_CHECK, CKV_SKIP_CHECK, CKV_FRAMEWORK,
#: CHECKOV_CHECK_FAIL_LEVEL=WARNING hides crashing checks, ...): none reaches the gate's checkov.
_STRIPPED_ENV_PREFIXES = ("CKV_", "CHECKOV_", "BC_", "PRISMA_")
_STRIPPED_ENV = frozenset({"LOG_LEVEL", "DOWNLOAD_EXTERNAL_MODULES", "EXTERNAL_MODULES_DIR", "WORKDIR",
                           "RUN_IN_DOCKER", "CREATE_EDGES", "CREATE_COMPLEX_VERTICES"})
_GATE_ENV = {
    "CHECKOV_CHECK_FAIL_LEVEL": "ERROR",  # a check that raises is logged as [ERROR], which fails the gate
    "LOG_LEVEL": "WARNING",
    "CHECKOV_MAX_FILE_SIZE": str(100_000_000),  # default 5 MB: a larger stack would be skipped silently
    "CHECKOV_MAX_IAC_FILE_SIZE": str(100_000_000),
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "PYTHONWARNINGS": "ignore",
}
RESULTS_FILE = "results_json.json"
#: checkov's secrets framework, over the Helm values and Secret data the gate extracts (stacks.py).
SECRETS_FRAMEWORK = "secrets"
TIMEOUT_SECONDS = 900


@dataclass
class CheckovRun:
    version: str
    records: list[dict[str, Any]]  # every passed, failed and skipped record, each with "result" set
    parsing_errors: list[str]
    errors: list[str]  # [ERROR] lines checkov logged
    stderr: str
    raw: Any
    exit_code: int
    secret_records: list[dict[str, Any]] = field(default_factory=list)  # the secrets framework's findings

    def restricted_to(self, folders: set[str]) -> CheckovRun:
        """The records and parsing errors of the scan folders named ``folders`` (one gated folder's stacks)."""
        def inside(path: str) -> bool:
            return scan_folder_of(path) in folders
        return replace(self, records=[r for r in self.records if inside(str(r.get("file_path", "")))],
                       secret_records=[r for r in self.secret_records if inside(str(r.get("file_path", "")))],
                       parsing_errors=[p for p in self.parsing_errors if inside(p)])


@lru_cache(maxsize=4096)
def scan_folder_of(path: str) -> str | None:
    """The scan folder (one prepared stack) of a file checkov names, absolutely or relative to the scanned
    folder (``/<folder>/cdk.tf.json``); cached, as every record of a stack names the same file."""
    parts = [part for part in path.replace("\\", "/").split("/") if part]
    return parts[-2] if len(parts) >= 2 else None


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_STRIPPED_ENV_PREFIXES) and k not in _STRIPPED_ENV}
    env.update(_GATE_ENV)
    env["PLATFORM_CONFIG_DATA"] = str(data_dir)  # the reviewed lists some custom checks read
    return env


#: checkov with policy documents kept as HCL gives them (tools/gate/checkov_main.py), run as a script so it
#: imports nothing of the project whatever the working directory.
CHECKOV_MAIN = Path(__file__).with_name("checkov_main.py")


def _checkov_python(checkov: Path) -> Path:
    """The Python of the environment whose ``checkov`` executable was given."""
    return checkov.parent / "python"


def command(checkov: Path, policies: Policies, scan_root: Path, output_dir: Path) -> list[str]:
    # Framework, offline mode and custom checks are passed here as well as in checkov.yaml, so an edit there
    # cannot drop them; the gate has already refused any config option that hides results.
    # The secrets framework scans only the extracted values (*.yaml under secrets/): the stacks' cdk.tf.json are
    # blocked from it, and terraform_json reads no YAML.
    return [str(_checkov_python(checkov)), str(CHECKOV_MAIN), "--config-file", str(policies.config_file),
            "--framework", FRAMEWORK, SECRETS_FRAMEWORK, "--skip-download",
            "--enable-secret-scan-all-files", "--block-list-secret-scan", ".json",
            "--external-checks-dir", str(policies.checks_dir), "--directory", str(scan_root),
            "--output", "json", "--compact", "--output-file-path", str(output_dir)]


def _results(document: Any) -> list[dict[str, Any]]:
    """checkov writes one report object, a list of them (several frameworks), or only a summary when it found
    nothing to scan."""
    reports = document if isinstance(document, list) else [document]
    return [r for r in reports if isinstance(r, dict) and r.get("check_type", FRAMEWORK) == FRAMEWORK]


def run(checkov: Path, policies: Policies, scan_root: Path, work_dir: Path, cwd: Path,
        data_dir: Path) -> CheckovRun:
    if not checkov.is_file():
        raise GateError(f"checkov not found at {checkov}: run 'make checkov-env' to create .venv-checkov")
    output_dir = work_dir / "checkov-output"
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        completed = subprocess.run(command(checkov, policies, scan_root, output_dir), cwd=cwd,
                                   env=_environment(data_dir), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE,
                                   text=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise GateError(f"checkov did not finish within {TIMEOUT_SECONDS} s") from None
    except OSError as error:
        raise GateError(f"checkov could not be started ({checkov}): {error}") from None
    stderr = completed.stderr or ""
    errors = [line.split("[ERROR]", 1)[1].strip() for line in stderr.splitlines() if "[ERROR]" in line]
    if completed.returncode not in (0, 1):
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise GateError(f"checkov failed (exit {completed.returncode}):\n{tail}")
    results_path = output_dir / RESULTS_FILE
    try:
        document = json.loads(results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"checkov wrote no {RESULTS_FILE} (exit {completed.returncode})") from None
    except ValueError as error:
        raise GateError(f"checkov's {RESULTS_FILE} is not JSON: {error}") from None

    records: list[dict[str, Any]] = []
    parsing_errors: list[str] = []
    version = ""
    reports = document if isinstance(document, list) else [document]
    secret_records = [record for report in reports if isinstance(report, dict)
                      and report.get("check_type") == SECRETS_FRAMEWORK
                      for record in (report.get("results") or {}).get("failed_checks") or []]
    for report in _results(document):
        results = report.get("results") or {}
        for key, outcome in (("passed_checks", "passed"), ("failed_checks", "failed"),
                             ("skipped_checks", "skipped")):
            for record in results.get(key) or []:
                records.append({**record, "result": outcome})
        parsing_errors.extend(str(p) for p in results.get("parsing_errors") or [])
        version = str((report.get("summary") or {}).get("checkov_version", version))
    return CheckovRun(version=version, records=records, secret_records=secret_records,
                      parsing_errors=parsing_errors, errors=errors,
                      stderr=stderr, raw=document, exit_code=completed.returncode)

