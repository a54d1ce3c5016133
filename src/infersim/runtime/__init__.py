"""Serving runtimes: what an engine adds to its kernels (see :mod:`.base`; profiles in :mod:`.profiles`).

``get_runtime("vllm")`` returns a frozen :class:`Runtime`; :data:`RUNTIMES` lists them all;
:data:`DEFAULT_RUNTIME` is the one every command uses unless told otherwise.
"""

from . import profiles as _profiles  # noqa: F401  (registers the runtimes)
from .base import (DEFAULT_RUNTIME, RUNTIMES, Runtime, SchedulerDefaults, UnknownRuntimeError, get_runtime,
                   known_runtime, register)

__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "Runtime", "SchedulerDefaults", "UnknownRuntimeError", "get_runtime",
           "known_runtime", "register"]
