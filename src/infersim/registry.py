"""Registering a pluggable family's implementations: one class decorator per registry, built here.

Each family (runtimes, optimizers, transforms, calibration stages, ...) keeps its own registry
dict, keyed by a class attribute defined once on each implementation; :func:`registrar` makes the
decorator that fills it and refuses an empty or repeated key."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T", bound=type)


def registrar(registry: dict, key_attr: str, family: str, *, instance: bool = False) -> Callable[[T], T]:
    """A class decorator adding a class to ``registry`` under its ``key_attr`` (an instance of it
    where ``instance``), raising ``ValueError`` for an empty key or one already registered."""

    def register(cls: T) -> T:
        key = getattr(cls, key_attr)
        if not key or key in registry:
            raise ValueError(f"{family} {key_attr} {key!r} is empty or registered twice")
        registry[key] = cls() if instance else cls
        return cls

    return register
