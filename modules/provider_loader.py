"""Import the cdktf prebuilt provider packages on demand instead of all at once.

Why
    The root ``__init__.py`` of each prebuilt provider package (``cdktf_cdktf_provider_aws`` and friends)
    imports every resource submodule of the package, 2,212 of them for aws, so that their classes register with
    the jsii runtime. Python runs that root before any submodule, so ``from cdktf_cdktf_provider_aws.vpc import
    Vpc`` costs seconds and hundreds of MB per process, although a synth needs only the submodules it uses,
    and those register their own classes when they are imported.

How
    ``install_provider_loader()`` puts a finder at the front of ``sys.meta_path`` that answers only for the
    provider package names. It gives such a package its real spec (same ``__file__`` and ``__path__``) but a
    loader that, instead of running the root ``__init__``:

    1. imports ``<package>._jsii``, which loads the package's jsii assembly into the node kernel, as the root
       does before its submodule imports;
    2. sets ``__doc__``, ``__path__`` and ``__all__`` as the root does, and a module ``__getattr__`` that imports
       a submodule on first attribute access. After its ``publication.publish()`` the eager root exposes only
       dunders, its submodules and ``_private`` (the namespace the root code ran in); ``_private`` is served by
       running the real root ``__init__``, i.e. the eager behaviour, and any other name raises
       ``AttributeError`` exactly as on the eager root;
    3. tells the jsii runtime which Python module holds each jsii submodule (the ``_submodule_fqn_map`` that
       newer jsii-pacmak output registers itself), so that an object the kernel hands back before its
       submodule was imported still finds its class instead of failing with "Unknown type".

    Submodules are then imported by the normal import system. The finder takes a package over only after
    checking its layout: a ``_jsii`` subpackage, and a root ``__init__`` made only of the statements the
    generator writes (docstring, fixed imports, ``TYPEGUARD_MAJOR_VERSION``, ``check_type``,
    ``from ._jsii import *``, ``__all__``, ``publication.publish()``, ``from . import x`` for exactly the
    ``__all__`` entries, each a folder of the package). Otherwise that package is imported eagerly, as shipped,
    with one warning line on stderr (logger ``modules.provider_loader``).

    The other two levers measured for eager imports, ``gc.disable()`` during the provider imports and
    ``gc.freeze()`` before exit, are not used: with only the used submodules imported there is little left for
    the collector, and on a 480-resource synth they changed nothing measurable (4.0 s with or without).

Turning it off
    ``PLATFORM_PROVIDER_LOADER=eager`` or ``install_provider_loader("eager")``: nothing is installed (an installed
    finder is removed) and provider packages are imported as shipped. Both modes synthesize byte-identical
    output (``make bench`` checks it). Call it before the first ``cdktf_cdktf_provider_*`` import: a package
    imported earlier is not affected.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import pkgutil
import sys
import types
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

ENV_VAR = "PLATFORM_PROVIDER_LOADER"
MODES = ("lazy", "eager")
PROVIDER_PACKAGES = (
    "cdktf_cdktf_provider_aws",
    "cdktf_cdktf_provider_kubernetes",
    "cdktf_cdktf_provider_helm",
    "cdktf_cdktf_provider_github",
    "cdktf_cdktf_provider_time",
)

_log = logging.getLogger(__name__)

# Statements of a generated root __init__ besides its docstring, ``def check_type``, ``__all__ = [...]`` and
# ``from . import <submodule>``: none of them does anything the lazy loader must reproduce.
_GENERATED_STATEMENTS = frozenset(
    {
        "from pkgutil import extend_path",
        "__path__ = extend_path(__path__, __name__)",
        *(f"import {name}" for name in ("abc", "builtins", "datetime", "enum", "typing", "jsii", "publication")),
        "import typing_extensions",
        "import typeguard",
        "from importlib.metadata import version as _metadata_package_version",
        "TYPEGUARD_MAJOR_VERSION = int(_metadata_package_version('typeguard').split('.')[0])",
        "from ._jsii import *",
        "publication.publish()",
    }
)


@dataclass(frozen=True)
class _Layout:
    """What the lazy loader needs from a provider package whose layout was checked."""

    name: str
    init_file: str
    doc: str | None
    submodules: tuple[str, ...]


class _LayoutError(Exception):
    """The package is not laid out as the lazy loader expects; the message says how."""


def install_provider_loader(mode: str | None = None, *, packages: Iterable[str] = PROVIDER_PACKAGES) -> str:
    """Make later imports of the provider ``packages`` lazy; return the mode in effect, "lazy" or "eager".

    ``mode`` defaults to ``$PLATFORM_PROVIDER_LOADER``, and that to "lazy". Call this before any
    ``cdktf_cdktf_provider_*`` import. Calling it again is harmless; "eager" removes an installed finder.
    A package that cannot be loaded lazily is imported eagerly, with one warning.
    """
    resolved = _resolve_mode(mode)
    if resolved == "eager":
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        return "eager"
    for name in packages:
        if name not in _FINDER.checked:
            _FINDER.checked.add(name)
            _take_over(name)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return "lazy"


def _resolve_mode(mode: str | None) -> str:
    """The mode from the argument, else from the environment variable (unset or empty means "lazy")."""
    source = "the mode argument" if mode is not None else f"environment variable {ENV_VAR}"
    raw = mode if mode is not None else os.environ.get(ENV_VAR, "")
    value = raw.strip() or "lazy"
    if value not in MODES:
        raise ValueError(f"invalid provider loader mode {raw!r} from {source}: allowed values are 'lazy' and 'eager'")
    return value


def _take_over(name: str) -> None:
    """Register package ``name`` for lazy loading, or warn once why it stays eager."""
    if name in sys.modules:
        why = "it was imported before install_provider_loader() was called"
    else:
        try:
            _FINDER.layouts[name] = _read_layout(name)
            return
        except _LayoutError as error:
            why = str(error)
    _log.warning("provider loader: %s is imported eagerly (slow): %s", name, why)


def _read_layout(name: str) -> _Layout:
    """Check that package ``name`` is laid out as the generated providers are; return what loading needs."""
    spec = importlib.machinery.PathFinder.find_spec(name)
    if spec is None or spec.origin is None or not spec.submodule_search_locations:
        raise _LayoutError("package not found")
    folder = os.path.dirname(spec.origin)
    if os.path.basename(spec.origin) != "__init__.py":
        raise _LayoutError(f"unexpected package file {spec.origin}")
    if not os.path.isfile(os.path.join(folder, "_jsii", "__init__.py")):
        raise _LayoutError("no _jsii subpackage")
    try:
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read(), spec.origin)
    except (OSError, SyntaxError, ValueError) as error:
        raise _LayoutError(f"cannot read its __init__.py ({error})") from None
    submodules = _generated_submodules(tree.body)
    entries = set(os.listdir(folder))
    missing = [sub for sub in submodules if sub not in entries]
    if missing:
        raise _LayoutError(f"__all__ names {missing[0]!r}, which is not a folder of the package")
    return _Layout(name=name, init_file=spec.origin, doc=ast.get_docstring(tree, clean=False), submodules=submodules)


def _generated_submodules(body: Sequence[ast.stmt]) -> tuple[str, ...]:
    """Return ``__all__`` if the root ``__init__`` holds only generated statements, else raise ``_LayoutError``."""
    exported: list[str] | None = None
    imported: list[str] = []
    for index, stmt in enumerate(body):
        if isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module is None:
            if all(alias.asname is None for alias in stmt.names):
                imported.extend(alias.name for alias in stmt.names)
                continue
        elif index == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "check_type" and not stmt.decorator_list:
            continue
        elif _is_all_assignment(stmt) and exported is None:
            exported = [element.value for element in stmt.value.elts]  # type: ignore[attr-defined]
            continue
        elif ast.unparse(stmt) in _GENERATED_STATEMENTS:
            continue
        raise _LayoutError(f"unexpected statement at line {stmt.lineno} of __init__.py: {ast.unparse(stmt)[:60]!r}")
    if exported is None:
        raise _LayoutError("its __init__.py has no __all__ list")
    if sorted(imported) != sorted(exported):
        raise _LayoutError("its __init__.py does not import exactly the submodules listed in __all__")
    return tuple(exported)


def _is_all_assignment(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Assign)
        and [ast.unparse(target) for target in stmt.targets] == ["__all__"]
        and isinstance(stmt.value, ast.List)
        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in stmt.value.elts)
    )


class _LazyProviderFinder(importlib.abc.MetaPathFinder):
    """Gives checked provider packages the lazy loader; everything else, submodules included, goes on as usual."""

    def __init__(self) -> None:
        self.layouts: dict[str, _Layout] = {}
        self.checked: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        layout = self.layouts.get(fullname)
        if layout is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname)
        if spec is None or spec.origin != layout.init_file or spec.loader is None:
            return None  # sys.path changed since the check: leave it to the normal import system
        spec.loader = _LazyProviderLoader(layout, spec.loader)
        return spec


class _LazyProviderLoader(importlib.abc.Loader):
    """Executes a provider package root without its submodule imports (see the module docstring)."""

    def __init__(self, layout: _Layout, original: importlib.abc.Loader) -> None:
        self._layout = layout
        self._original = original

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        layout = self._layout
        module.__doc__ = layout.doc
        module.__path__ = pkgutil.extend_path(list(module.__path__), layout.name)
        module.__all__ = list(layout.submodules)
        module.__getattr__ = _package_getattr(module, self._original)  # type: ignore[method-assign]
        module.__dir__ = lambda: sorted({*vars(module), *layout.submodules, "_private"})  # type: ignore[method-assign]
        jsii_module = importlib.import_module(f"{layout.name}._jsii")
        _register_submodules_with_jsii(layout, jsii_module)

    def get_resource_reader(self, fullname: str) -> Any:
        return self._original.get_resource_reader(fullname)  # type: ignore[attr-defined]

    def is_package(self, fullname: str) -> bool:
        return True


def _package_getattr(module: types.ModuleType, original: importlib.abc.Loader) -> Any:
    """The package's ``__getattr__``: a submodule on demand, ``_private`` the eager way, else as on the eager root."""
    name = module.__name__
    submodules = frozenset(module.__all__)

    def __getattr__(attribute: str) -> Any:
        if attribute in submodules:
            return importlib.import_module(f"{name}.{attribute}")
        if attribute == "_private":
            return _run_eager_root(module, original)
        raise AttributeError(f"module {name!r} has no attribute {attribute!r}")

    return __getattr__


def _run_eager_root(module: types.ModuleType, original: importlib.abc.Loader) -> types.ModuleType:
    """Run the real root ``__init__`` (every submodule import) and give ``module`` what the eager root exposes.

    The code runs in a fresh module that stands in ``sys.modules[name]``, as during an eager import. Its
    ``publication.publish()`` replaces it there by a public copy and files it as ``<name>._private``; afterwards
    our module goes back into ``sys.modules[name]`` and gets the submodules.
    """
    name = module.__name__
    private = types.ModuleType(name, module.__doc__)
    for attribute in ("__file__", "__cached__", "__path__", "__spec__", "__loader__", "__package__"):
        setattr(private, attribute, getattr(module, attribute, None))
    code = original.get_code(name)  # type: ignore[attr-defined]
    sys.modules[name] = private
    try:
        exec(code, vars(private))
    finally:
        sys.modules[name] = module
    for sub in module.__all__:
        setattr(module, sub, sys.modules[f"{name}.{sub}"])
    module._private = private  # type: ignore[attr-defined]
    return private


def _register_submodules_with_jsii(layout: _Layout, jsii_module: types.ModuleType) -> None:
    """Tell the jsii runtime which Python module holds each jsii submodule of the package's assembly.

    jsii >= 1.1xx imports the module of a type it meets unregistered through ``_submodule_fqn_map`` (filled
    from ``_SUBMODULE_FQN_MAP`` by packages generated for lazy loading, which these are not). Provider
    submodule ``eks_cluster`` holds jsii submodule ``<assembly>.eksCluster``; a test checks this for every
    type of the installed providers. A runtime without the map is left alone.
    """
    assembly = getattr(jsii_module, "__jsii_assembly__", None)
    if assembly is None:
        return
    from jsii import _reference_map

    fqn_map = getattr(_reference_map, "_submodule_fqn_map", None)
    if not isinstance(fqn_map, MutableMapping):
        return
    for sub in layout.submodules:
        head, *rest = sub.split("_")
        jsii_name = head + "".join(part[:1].upper() + part[1:] for part in rest)
        fqn_map.setdefault(f"{assembly.name}.{jsii_name}", f"{layout.name}.{sub}")


_FINDER = _LazyProviderFinder()
