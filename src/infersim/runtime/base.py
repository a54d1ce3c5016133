"""The serving-runtime interface and its registry.

A *runtime* is what a serving engine (TensorRT-LLM, vLLM, SGLang) adds to its kernels:

* **Host time per iteration** (scheduling, input preparation, sampling bookkeeping,
  output processing and detokenization), three linear parts in the step's ``seqs``
  sequences: ``host`` (``host_fixed_s + host_per_seq_s * seqs``) on every step,
  ``schedule`` (``schedule_fixed_s + schedule_per_seq_s * seqs``) once per scheduler call,
  so ``schedule / scheduler_steps`` per step (vLLM's multi-step scheduling runs
  ``num_scheduler_steps`` decode steps per call), and ``async`` (``async_fixed_s +
  async_per_seq_s * seqs``), work the CPU does while the GPU runs the next step (vLLM's
  asynchronous output processor). An engine that runs all its CPU work one batch ahead of
  the GPU (``overlap``: TensorRT-LLM's overlap scheduler, SGLang's zero-overhead
  scheduler, after NanoFlow, Zhu et al., 2024) takes ``max(kernels, host + schedule/n +
  async)`` per step; one that does not takes ``host + schedule/n + max(kernels, async)``
  (one CPU thread does the serial part and then the asynchronous part while the GPU runs).
* **CUDA graphs for decode**: decode-only steps of ``b`` sequences run the graph captured
  for the smallest captured size ``g >= b`` when the engine pads (``graph_padding``), so
  the step's kernels see ``g`` sequences (the padding slots have no context, so attention
  reads only the real ``b`` contexts); above the largest captured size, or with no
  padding, the step runs eagerly at ``b``. Mixed and prefill steps run eagerly. The
  kernel model's per-launch cost (calibrated on measured kernels) stands for both.
* **Defaults** of the scheduler a scenario leaves unset: KV-cache memory fraction and how
  it is applied, ``max_num_seqs``, per-step token cap, chunked prefill, KV block size.

Every runtime is a frozen dataclass registered once in :data:`RUNTIMES` under its
``name``; :func:`get_runtime` is the only lookup. ``none`` is the kernels-only model.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ..errors import InfersimError
from ..registry import registrar

#: the runtime every command uses unless told otherwise: the registered runtime whose predictions
#: match the dev half of the validation table best when every row runs it (MdAPE; `python
#: benchmarks/bench_validate.py --compare-runtimes`; docs/runtime.md "The default runtime")
DEFAULT_RUNTIME = "vllm-v0.6"


class UnknownRuntimeError(InfersimError):
    """A runtime name that is not registered."""

    def __init__(self, name: str) -> None:
        super().__init__(_unknown_runtime_message(name))
        self.name = name


def _unknown_runtime_message(name: str) -> str:
    return f"unknown runtime '{name}'; expected one of {', '.join(sorted(RUNTIMES))}"


@dataclass(frozen=True)
class SchedulerDefaults:
    """What a runtime sets when the user does not (keys of :class:`~infersim.serving.scenario.SchedulerSpec`)."""

    policy: str
    max_num_seqs: int
    max_num_batched_tokens: int | None
    block_size: int
    memory_utilization: float

    def as_dict(self) -> dict:
        return {"policy": self.policy, "max_num_seqs": self.max_num_seqs,
                "max_num_batched_tokens": self.max_num_batched_tokens, "block_size": self.block_size,
                "memory_utilization": self.memory_utilization}


@dataclass(frozen=True)
class Runtime:
    """Base runtime: the kernels only (no host time, no graph padding, today's scheduler defaults).

    Subclasses set their numbers as field defaults and their scheduler defaults in
    :attr:`defaults`, each with its source in :attr:`sources`, and may override
    :meth:`scheduler_defaults` (defaults that depend on the device) and :meth:`kv_capacity_bytes`.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: field or topic -> where the number or behaviour comes from
    sources: ClassVar[dict[str, str]] = {}
    #: the engine's scheduler defaults (infersim's own for the base: vLLM v0-style continuous
    #: batching, 256 sequences, no token cap, block 16, 0.9 of the device)
    defaults: ClassVar[SchedulerDefaults] = SchedulerDefaults(
        policy="continuous", max_num_seqs=256, max_num_batched_tokens=None, block_size=16, memory_utilization=0.90)

    host_fixed_s: float = 0.0
    host_per_seq_s: float = 0.0
    overlap: bool = False
    graph_sizes: tuple[int, ...] = ()
    graph_padding: bool = False
    #: host work once per scheduler call (spread over ``scheduler_steps`` steps)
    schedule_fixed_s: float = 0.0
    schedule_per_seq_s: float = 0.0
    #: host work done while the GPU runs the next step (asynchronous output processing)
    async_fixed_s: float = 0.0
    async_per_seq_s: float = 0.0
    #: decode steps per scheduler call (vLLM ``num_scheduler_steps``; 1: schedule every step)
    scheduler_steps: int = 1

    def __post_init__(self) -> None:
        times = (self.host_fixed_s, self.host_per_seq_s, self.schedule_fixed_s, self.schedule_per_seq_s,
                 self.async_fixed_s, self.async_per_seq_s)
        if min(times) < 0:
            raise InfersimError(f"runtime '{self.name}': host times must be >= 0")
        if isinstance(self.scheduler_steps, bool) or not isinstance(self.scheduler_steps, int) \
                or self.scheduler_steps < 1:
            raise InfersimError(f"runtime '{self.name}': scheduler_steps must be an integer >= 1, "
                                f"got {self.scheduler_steps!r}")
        if any(g < 1 for g in self.graph_sizes) or list(self.graph_sizes) != sorted(set(self.graph_sizes)):
            raise InfersimError(f"runtime '{self.name}': graph_sizes must be increasing positive integers")

    # ----- time ---------------------------------------------------------------------------------
    @property
    def identity(self) -> bool:
        """True when the runtime changes no step time (the kernels-only model)."""
        no_host = not any((self.host_fixed_s, self.host_per_seq_s, self.schedule_fixed_s, self.schedule_per_seq_s,
                           self.async_fixed_s, self.async_per_seq_s))
        return no_host and not (self.graph_padding and self.graph_sizes)

    def serial_host_s(self, seqs):
        """Host time on the step's critical path (scalar or numpy array of ``seqs``): every step's
        ``host`` part plus the scheduler call's ``schedule`` part divided by ``scheduler_steps``."""
        return (self.host_fixed_s + self.host_per_seq_s * seqs
                + (self.schedule_fixed_s + self.schedule_per_seq_s * seqs) / self.scheduler_steps)

    def async_host_s(self, seqs):
        """Host time that runs while the GPU executes the next step (scalar or numpy array)."""
        return self.async_fixed_s + self.async_per_seq_s * seqs

    def host_s(self, seqs: int) -> float:
        """All host time of one iteration of ``seqs`` sequences (serial and asynchronous parts)."""
        return self.serial_host_s(seqs) + self.async_host_s(seqs)

    def step_time_s(self, kernel_s: float, seqs: int) -> float:
        """Wall time of an iteration whose kernels take ``kernel_s``: ``max(kernel_s, host)`` when all
        host work overlaps the GPU (one batch ahead), else ``serial + max(kernel_s, async)``."""
        serial = (self.host_fixed_s + self.host_per_seq_s * seqs
                  + (self.schedule_fixed_s + self.schedule_per_seq_s * seqs) / self.scheduler_steps)
        late = self.async_fixed_s + self.async_per_seq_s * seqs
        if self.overlap:
            host = serial + late
            return kernel_s if kernel_s >= host else host
        return serial + (kernel_s if kernel_s >= late else late)

    def with_scheduler_steps(self, steps: int | None) -> Runtime:
        """This runtime scheduling once every ``steps`` decode steps (None or 1: every step)."""
        if steps is None or steps == self.scheduler_steps:
            return self
        return replace(self, scheduler_steps=steps)

    def graph_batch(self, decode_seqs: int) -> int:
        """Sequences the kernels of a decode-only step of ``decode_seqs`` sequences process: the
        smallest captured graph size >= ``decode_seqs`` when the runtime pads, else ``decode_seqs``
        (no padding, or eager above the largest captured size)."""
        sizes = self.graph_sizes
        if not self.graph_padding or not sizes or decode_seqs > sizes[-1] or decode_seqs <= 0:
            return decode_seqs
        return sizes[bisect_left(sizes, decode_seqs)]

    def for_device(self, device_memory_bytes: float) -> Runtime:
        """This runtime as configured on a device with ``device_memory_bytes`` (some engines capture
        more graph sizes on larger devices)."""
        return self

    def step_times_s(self, kernel_s: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """:meth:`step_time_s` of many steps at once (numpy arrays)."""
        kernel_s = np.asarray(kernel_s, dtype=np.float64)
        seqs = np.asarray(seqs, dtype=np.float64)
        serial, late = self.serial_host_s(seqs), self.async_host_s(seqs)
        if self.overlap:
            return np.maximum(kernel_s, serial + late)
        return serial + np.maximum(kernel_s, late)

    def graph_batches(self, decode_seqs: np.ndarray) -> np.ndarray:
        """:meth:`graph_batch` of many decode batch sizes at once (float array of whole numbers)."""
        b = np.asarray(decode_seqs, dtype=np.float64)
        sizes = np.asarray(self.graph_sizes, dtype=np.float64)
        if not self.graph_padding or sizes.size == 0:
            return b.copy()
        idx = np.searchsorted(sizes, b, side="left")
        padded = sizes[np.minimum(idx, sizes.size - 1)]
        return np.where((b > 0) & (b <= sizes[-1]), padded, b)

    # ----- defaults -----------------------------------------------------------------------------
    def scheduler_defaults(self, device_memory_bytes: float, device_name: str, tp: int,
                           offline: bool, max_model_len: int | None = None) -> SchedulerDefaults:
        """Scheduler settings of this engine on a device (``offline``: a throughput benchmark
        with every request queued up front, as opposed to an online server; ``max_model_len``:
        the served model's context length, when known): :attr:`defaults`, which a subclass
        adjusts per device by overriding this method."""
        return self.defaults

    def kv_capacity_bytes(self, memory_bytes: float, weights_bytes: float, activation_bytes: float,
                          fraction: float) -> float:
        """KV-cache bytes per device: ``fraction * memory - weights - activations`` (vLLM's
        ``gpu_memory_utilization``: a share of the whole device for everything)."""
        return fraction * memory_bytes - weights_bytes - activation_bytes

    def describe(self) -> dict:
        """The runtime's numbers and their sources (for reports and ``--json``)."""
        return {"name": self.name, "title": self.title, "host_fixed_s": self.host_fixed_s,
                "host_per_seq_s": self.host_per_seq_s, "schedule_fixed_s": self.schedule_fixed_s,
                "schedule_per_seq_s": self.schedule_per_seq_s, "async_fixed_s": self.async_fixed_s,
                "async_per_seq_s": self.async_per_seq_s, "scheduler_steps": self.scheduler_steps,
                "overlap": self.overlap,
                "graph_sizes": list(self.graph_sizes), "graph_padding": self.graph_padding,
                "sources": dict(self.sources)}


RUNTIMES: dict[str, type[Runtime]] = {}


#: class decorator: add a runtime to :data:`RUNTIMES` under its ``name`` (once)
register = registrar(RUNTIMES, "name", "runtime")


def known_runtime(name: str | None) -> str | None:
    """``name`` if it is a registered runtime (or None), else ValueError (for file validators)."""
    if name is not None and name not in RUNTIMES:
        raise ValueError(_unknown_runtime_message(name))
    return name


def get_runtime(name: str | None = None) -> Runtime:
    """The registered runtime ``name`` (:data:`DEFAULT_RUNTIME` when None)."""
    key = DEFAULT_RUNTIME if name is None else name
    cls = RUNTIMES.get(key)
    if cls is None:
        raise UnknownRuntimeError(key)
    return cls()
