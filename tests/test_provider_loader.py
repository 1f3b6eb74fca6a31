"""Behaviour of the lazy provider loader (modules/provider_loader.py).

Every test that imports providers or installs the loader does it in a fresh Python process, so the test process
keeps whatever mode the conftest chose. No timing thresholds here: `make bench` measures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EAGER_SYNTH_ENV, EagerSynth

from modules.provider_loader import ENV_VAR, PROVIDER_PACKAGES, install_provider_loader

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_python(
    code: str, *, extra_path: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv, with the repo (and ``extra_path``) importable."""
    paths = [str(REPO_ROOT), *([str(extra_path)] if extra_path else [])]
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    full_env.pop(ENV_VAR, None)
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=full_env, capture_output=True, text=True)
    assert result.returncode == 0, f"child failed:\n{result.stderr}"
    return result


# --- the real provider packages, loaded lazily -------------------------------------------------------------------

IMPORT_ONE_SUBMODULE_EACH = """
import json, sys
from modules.provider_loader import install_provider_loader
mode = install_provider_loader()
import cdktf_cdktf_provider_aws.eks_cluster
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_github.branch_protection import BranchProtection
from cdktf_cdktf_provider_time.sleep import Sleep
from jsii import _reference_map
print(json.dumps({
    "mode": mode,
    "modules": sorted(m for m in sys.modules if m.startswith("cdktf_cdktf_provider_")),
    "fqn_map": dict(_reference_map._submodule_fqn_map),
}))
"""


@pytest.fixture(scope="module")
def lazy_process() -> dict:
    """What a process that imported one or two submodules of each provider with the loader on ended up with."""
    return json.loads(run_python(IMPORT_ONE_SUBMODULE_EACH).stdout)


def test_importing_provider_submodules_imports_only_them_and_the_assembly_loaders(lazy_process: dict) -> None:
    loaded = {m for m in lazy_process["modules"] if not m.endswith("._private")}  # publication's twin modules

    assert lazy_process["mode"] == "lazy"
    assert loaded == {
        *PROVIDER_PACKAGES,
        *(f"{package}._jsii" for package in PROVIDER_PACKAGES),
        "cdktf_cdktf_provider_aws.eks_cluster",
        "cdktf_cdktf_provider_aws.provider",
        "cdktf_cdktf_provider_kubernetes.namespace_v1",
        "cdktf_cdktf_provider_helm.release",
        "cdktf_cdktf_provider_github.branch_protection",
        "cdktf_cdktf_provider_time.sleep",
    }


def test_the_jsii_runtime_learns_the_python_module_of_every_provider_type(lazy_process: dict) -> None:
    """Each generated class names its jsii type; the loader's map must send that type's submodule to its module."""
    fqn_map = lazy_process["fqn_map"]
    checked = 0
    for package in PROVIDER_PACKAGES:
        folder = Path(importlib.util.find_spec(package).origin).parent  # found, not imported
        for init in sorted(folder.glob("*/__init__.py")):
            if init.parent.name.startswith("_"):
                continue
            for jsii_type in set(re.findall(r'jsii_type="([^"]+)"', init.read_text())):
                assert fqn_map.get(jsii_type.rsplit(".", 1)[0]) == f"{package}.{init.parent.name}", jsii_type
                checked += 1
    assert checked > 20_000


def test_a_provider_object_handed_back_by_the_kernel_finds_its_class_though_its_submodule_was_never_imported() -> None:
    # The kernel answers with an object reference "<jsii type>@<id>"; resolving it is what jsii does on return.
    code = """
import sys
from modules.provider_loader import install_provider_loader
install_provider_loader()
import cdktf_cdktf_provider_github
assert "cdktf_cdktf_provider_github.repository_environment" not in sys.modules
import jsii
from jsii._kernel.types import ObjRef
from jsii._reference_map import resolve_reference
ref = "@cdktf/provider-github.repositoryEnvironment.RepositoryEnvironment@10000"
obj = resolve_reference(jsii.kernel, ObjRef(ref=ref))
print(type(obj).__module__, type(obj).__name__)
"""
    assert run_python(code).stdout.split() == [
        "cdktf_cdktf_provider_github.repository_environment", "RepositoryEnvironment"]


NAMES_OF_THE_TIME_PACKAGE = """
import json, sys
from modules.provider_loader import install_provider_loader
install_provider_loader()
import cdktf_cdktf_provider_time as package
first = {"all": package.__all__, "doc": package.__doc__, "path": package.__path__, "file": package.__file__}
public = {name: type(getattr(package, name)).__name__ for name in dir(package) if not name.startswith("__")}
private = package._private
print(json.dumps({
    **first,
    "public": public,
    "private": sorted(n for n in vars(private) if not n.startswith("__")),
    "same_module": sys.modules["cdktf_cdktf_provider_time"] is package,
    "private_module": sys.modules["cdktf_cdktf_provider_time._private"] is private,
}))
"""


def test_the_lazy_package_offers_every_name_of_the_eager_package() -> None:
    """Compared on the time provider (five submodules), the only one small enough to import eagerly in a test."""
    lazy = json.loads(run_python(NAMES_OF_THE_TIME_PACKAGE).stdout)
    eager = json.loads(run_python(NAMES_OF_THE_TIME_PACKAGE, env={ENV_VAR: "eager"}).stdout)

    for key in ("all", "doc", "path", "file"):
        assert lazy[key] == eager[key], key
    assert eager["public"].items() <= lazy["public"].items()
    assert set(lazy["private"]) | {"_jsii"} == set(eager["private"])  # check_type, TYPEGUARD_MAJOR_VERSION, ...
    assert lazy["same_module"] and lazy["private_module"]


def test_names_the_eager_package_does_not_have_are_missing_from_the_lazy_one_too() -> None:
    code = """
from modules.provider_loader import install_provider_loader
install_provider_loader()
import cdktf_cdktf_provider_time as package
for name in ("check_type", "TYPEGUARD_MAJOR_VERSION", "no_such_submodule"):
    assert not hasattr(package, name), name
print("ok")
"""
    assert run_python(code).stdout.strip() == "ok"


def test_eager_mode_from_the_environment_imports_providers_as_shipped() -> None:
    code = """
import sys
from modules.provider_loader import install_provider_loader
print(install_provider_loader())
import cdktf_cdktf_provider_time.sleep
print(sorted(m for m in sys.modules if m.startswith("cdktf_cdktf_provider_time.") and "._" not in m))
"""
    mode, modules = run_python(code, env={ENV_VAR: "eager"}).stdout.splitlines()

    assert mode == "eager"
    assert modules == str(
        [f"cdktf_cdktf_provider_time.{s}" for s in ("offset", "provider", "rotating", "sleep", "static_resource")]
    )


# --- fallback to eager imports -----------------------------------------------------------------------------------

GENERATED_LIKE_INIT = '''"""A fake provider package laid out like the generated ones."""
import typing
{jsii_import}
__all__ = ["alpha", "beta"]
{extra}
from . import alpha
from . import beta
'''

UNEXPECTED_LAYOUTS = {
    "no _jsii subpackage": ("", False),
    "an unexpected statement in __init__.py": (
        "SIDE_EFFECT = print('registered', file=__import__('sys').stdout)",
        True,
    ),
    "submodule imports that differ from __all__": ("from . import alpha as first", True),
}


def make_fake_provider(root: Path, *, extra: str = "", with_jsii: bool = True) -> None:
    package = root / "fakeprovider"
    for sub in ("alpha", "beta", *(["_jsii"] if with_jsii else [])):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    jsii_import = "from ._jsii import *" if with_jsii else ""
    (package / "__init__.py").write_text(GENERATED_LIKE_INIT.format(jsii_import=jsii_import, extra=extra))


IMPORT_FAKE_TWICE_INSTALLED = """
import sys
from modules.provider_loader import install_provider_loader
print(install_provider_loader("lazy", packages=["fakeprovider"]))
install_provider_loader("lazy", packages=["fakeprovider"])
import fakeprovider.alpha
print("beta imported" if "fakeprovider.beta" in sys.modules else "beta not imported")
"""


@pytest.mark.parametrize("layout", UNEXPECTED_LAYOUTS)
def test_a_package_with_an_unexpected_layout_is_imported_eagerly_with_one_warning_line(
    tmp_path: Path, layout: str
) -> None:
    extra, with_jsii = UNEXPECTED_LAYOUTS[layout]
    make_fake_provider(tmp_path, extra=extra, with_jsii=with_jsii)

    result = run_python(IMPORT_FAKE_TWICE_INSTALLED, extra_path=tmp_path)

    assert result.stdout.splitlines()[-1] == "beta imported"  # the real __init__ ran
    warning_lines = result.stderr.splitlines()
    assert len(warning_lines) == 1, result.stderr
    assert "fakeprovider" in warning_lines[0] and "eagerly" in warning_lines[0]


def test_a_package_with_the_generated_layout_is_loaded_lazily_without_warning(tmp_path: Path) -> None:
    """The control case of the fallback test: same fake package, expected layout."""
    make_fake_provider(tmp_path)

    result = run_python(IMPORT_FAKE_TWICE_INSTALLED, extra_path=tmp_path)

    assert result.stdout.splitlines() == ["lazy", "beta not imported"]
    assert result.stderr == ""


def test_a_missing_package_gets_one_warning_and_the_usual_import_error(tmp_path: Path) -> None:
    code = """
from modules.provider_loader import install_provider_loader
install_provider_loader("lazy", packages=["fakeprovider"])
install_provider_loader("lazy", packages=["fakeprovider"])
try:
    import fakeprovider
except ModuleNotFoundError:
    print("ModuleNotFoundError")
"""
    result = run_python(code, extra_path=tmp_path)

    assert result.stdout.strip() == "ModuleNotFoundError"
    assert len(result.stderr.splitlines()) == 1 and "fakeprovider" in result.stderr and "not found" in result.stderr


def test_a_package_imported_before_the_loader_stays_eager_with_one_warning_line(tmp_path: Path) -> None:
    make_fake_provider(tmp_path)
    code = """
import fakeprovider
from modules.provider_loader import install_provider_loader
print(install_provider_loader("lazy", packages=["fakeprovider"]))
"""
    result = run_python(code, extra_path=tmp_path)

    assert result.stdout.strip() == "lazy"
    assert len(result.stderr.splitlines()) == 1 and "fakeprovider" in result.stderr and "before" in result.stderr


# --- choosing the mode ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["fast", "LAZY", "off", "1"])
def test_an_invalid_mode_in_the_environment_is_rejected_naming_the_variable_and_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(ENV_VAR, value)

    with pytest.raises(ValueError, match=rf"{ENV_VAR}.*'lazy' and 'eager'") as error:
        install_provider_loader()  # rejects before changing anything
    assert repr(value) in str(error.value)


def test_an_invalid_mode_argument_is_rejected_with_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"'quick'.*'lazy' and 'eager'"):
        install_provider_loader("quick")


# --- depends on main.py: the whole synth, lazy against eager --------------------------------------------------------


def test_the_stacks_are_byte_identical_with_lazy_and_with_eager_provider_imports(
        eager_synth: EagerSynth, synth_outdir: Path) -> None:
    """The session's synth (lazy, as every synth runs) against ``main.py`` with the providers imported as shipped,
    started by the session in the background (the eager import alone takes seconds). Every file of the eager
    environment's stacks is compared, so an absolute machine path in the output would fail here too."""
    eager = {name: data for name, data in eager_synth.files().items() if name.startswith("stacks/")}
    assert any(name.endswith("cdk.tf.json") for name in eager), sorted(eager)
    stack_folders = {name.split("/")[1] for name in eager}
    assert stack_folders and all(folder.startswith(f"{EAGER_SYNTH_ENV}-") for folder in stack_folders)
    lazy = {str(p.relative_to(synth_outdir)): p.read_bytes() for folder in sorted(stack_folders)
            for p in sorted((synth_outdir / "stacks" / folder).rglob("*")) if p.is_file()}

    assert sorted(lazy) == sorted(eager)
    assert [name for name in lazy if lazy[name] != eager[name]] == []
