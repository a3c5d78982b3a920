"""The API reference: a page per public module of xpnet, written at each build.

Each page lists every name of its module's ``__all__``. A name is documented in full
once, in its home module (the module that defines it, when that one is public and
exports it, else the shortest public module that exports it); the other pages that
export it link there.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from pathlib import Path
from types import ModuleType
from typing import Any

from sphinx.application import Sphinx

PACKAGE = "xpnet"


def public_modules() -> list[ModuleType]:
    """xpnet and its submodules that have no ``_`` in their dotted name, by name."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE] + [
        info.name
        for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    return [importlib.import_module(name) for name in sorted(names)]


def exported(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        raise RuntimeError(f"{module.__name__} has no __all__: say which names are public")
    return list(names)


Key = tuple[str, int]


def key(module: ModuleType, name: str) -> Key:
    """A public name and the object it names: the same pair wherever it is exported."""
    return name, id(getattr(module, name))


def homes(modules: list[ModuleType]) -> dict[Key, str]:
    """For each exported name, the module that documents it in full."""
    exporters: dict[Key, list[str]] = {}
    objects: dict[Key, Any] = {}
    for module in modules:
        for name in exported(module):
            exporters.setdefault(key(module, name), []).append(module.__name__)
            objects[key(module, name)] = getattr(module, name)
    return {
        pair: min(where, key=lambda name: (name.count("."), len(name), name))
        for pair, where in exporters.items()
    }


def _is_alias(obj: Any) -> bool:
    """A type alias such as ``dict[str, list[float]]`` or ``Literal["a", "b"]``."""
    return isinstance(obj, types.GenericAlias) or type(obj).__module__ == "typing"


def _foreign(obj: Any) -> str | None:
    """Where a class or function defined outside xpnet comes from (None: xpnet's own)."""
    if not (inspect.isclass(obj) or callable(obj)) or _is_alias(obj):
        return None
    module = getattr(obj, "__module__", None) or ""
    if module == PACKAGE or module.startswith(f"{PACKAGE}."):
        return None
    return f"{module}.{obj.__qualname__}"


def _entry(name: str, obj: Any) -> list[str]:
    """The reST that documents ``obj`` under ``name`` in its home module's page."""
    foreign = _foreign(obj)
    if foreign is not None:
        kind = "class" if inspect.isclass(obj) else "function"
        return [f".. py:{kind}:: {name}", "", f"   ``{foreign}``, exported by xpnet as it is.", ""]
    if _is_alias(obj):
        return [f".. py:data:: {name}", "", f"   A type alias: ``{obj!r}``.", ""]
    directive = _directive(obj)
    lines = [f".. {directive}:: {name}"]
    if directive == "autoclass":
        lines += ["   :members:", "   :undoc-members:"]
    if directive == "autodata":
        lines.append("   :no-value:")
    return [*lines, ""]


def _directive(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def module_page(module: ModuleType, home: dict[Key, str]) -> str:
    title = module.__name__
    lines = [title, "=" * len(title), "", f".. automodule:: {title}", "   :no-members:", ""]
    names = exported(module)
    here = [name for name in names if home[key(module, name)] == title]
    # autosummary cannot summarise a type alias: those are named after the table.
    aliases = [name for name in names if _is_alias(getattr(module, name))]
    lines += [".. autosummary::", "   :nosignatures:", ""]
    for name in names:
        where = home[key(module, name)]
        if name not in aliases:
            lines.append(f"   {name}" if where == title else f"   ~{where}.{name}")
    lines.append("")
    if aliases:
        refs = ", ".join(f":py:data:`~{home[key(module, name)]}.{name}`" for name in aliases)
        lines += [f"Type aliases: {refs}.", ""]
    for name in here:
        lines += _entry(name, getattr(module, name))
    return "\n".join(lines)


def write_pages(app: Sphinx) -> None:
    modules = public_modules()
    home = homes(modules)
    folder = Path(app.srcdir) / "api"
    folder.mkdir(exist_ok=True)
    wanted = {}
    for module in modules:
        wanted[f"{module.__name__}.rst"] = module_page(module, home)
    index = [
        "API reference",
        "=============",
        "",
        "Every public name of xpnet, module by module, from its docstring.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    index += [f"   {module.__name__}" for module in modules]
    wanted["index.rst"] = "\n".join(index) + "\n"
    for path in folder.glob("*.rst"):
        if path.name not in wanted:
            path.unlink()
    for name, text in wanted.items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def skip_foreign_members(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Leave out members a base class outside xpnet adds (scikit-learn's ``set_*_request``)."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and callable(obj) and module and not module.startswith(PACKAGE):
        return True
    return None


def _resolve(dotted: str) -> Any:
    """The object a dotted name such as ``xpnet.pipeline._run.run`` names, or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def documented_names(app: Sphinx) -> dict[int, str]:
    """Each class and function of the reference, by id: the full name it has there."""
    if not hasattr(app, "_xpnet_documented"):
        modules = public_modules()
        names: dict[int, str] = {}
        for (name, _), where in homes(modules).items():
            obj = getattr(importlib.import_module(where), name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names[id(obj)] = f"{where}.{name}"
        app._xpnet_documented = names  # type: ignore[attr-defined]
    return app._xpnet_documented  # type: ignore[attr-defined, no-any-return]


def resolve_by_object(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """A reference by another name of a documented object (``xpnet.neural_net.TwoLayerNet``
    for ``xpnet.TwoLayerNet``, or a name relative to the module that defines it) goes to
    the page that documents it."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates += [f"{module}.{cls}.{target}"] if cls else []
        candidates.append(f"{module}.{target}")
    documented = documented_names(app)
    domain = env.get_domain("py")
    for candidate in candidates:
        if not candidate.startswith(f"{PACKAGE}."):
            continue
        parts = candidate.split(".")
        for i in range(len(parts), 1, -1):
            obj = _resolve(".".join(parts[:i]))
            if obj is not None and id(obj) in documented:
                new = ".".join([documented[id(obj)], *parts[i:]])
                found = domain.resolve_xref(
                    env, node["refdoc"], app.builder, node["reftype"], new, node, contnode
                )
                if found is not None:
                    return found
                break
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_by_object)
    app.connect("builder-inited", write_pages)
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
