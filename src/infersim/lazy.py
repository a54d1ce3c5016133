"""Lazy package exports (PEP 562): a package's ``__init__`` names what it exports and from which
submodule, and a name's submodule is imported on first use. ``infersim plan`` and ``infersim
estimate`` then import only the modules they run (the database, optimizers, simulator and their
dependencies stay unloaded); ``from infersim.search import run_study`` works as before."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in submodules:
    ``exports`` maps each name to its submodule, relative (``".store"``)."""

    def __getattr__(name: str):
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        importlib.import_module(package).__dict__[name] = value  # later lookups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__
