"""What a simulation run records: per-request outcomes (:class:`RequestLog`, shared by the
replicas) and each replica's steps (:class:`StepLog`, compact: decode runs as linear pieces),
stored flat in typed arrays (:class:`Records`) so that long runs stay small.
"""

from __future__ import annotations

import math
from array import array

NAN = math.nan


class RequestLog:
    """Per-request outcomes, shared by all replicas (plain lists: fast scalar writes)."""

    def __init__(self, arrival_s, input_tokens, output_tokens, prefix_group, prefix_tokens) -> None:
        n = len(input_tokens)
        self.n = n
        self.arrival_s = list(arrival_s)
        self.input_tokens = list(input_tokens)
        self.output_tokens = list(output_tokens)
        self.prefix_group = list(prefix_group)
        self.prefix_tokens = list(prefix_tokens)
        self.first_scheduled_s = [NAN] * n
        self.first_token_s = [NAN] * n
        self.completion_s = [NAN] * n
        self.preemptions = [0] * n
        self.replica = [-1] * n
        self.prefix_hit_tokens = [0] * n


class Records(array):
    """Fixed-width records stored flat in a typed array: 8 (or 4) bytes a value instead of a tuple
    of Python objects (a decode run of a pipeline engine is often only a few steps long, so a
    long run has millions of them). ``append(record)`` adds one (C speed: it is
    ``array.extend``), ``len()`` counts records, ``records[i]`` reads one back as a tuple."""

    def __new__(cls, typecode: str, width: int):
        self = super().__new__(cls, typecode)
        self.width = width
        return self

    append = array.extend

    def __len__(self) -> int:
        return array.__len__(self) // self.width

    def __getitem__(self, i: int) -> tuple:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("record index out of range")
        w = self.width
        return tuple(array.__getitem__(self, slice(i * w, (i + 1) * w)))

    def last(self, field: int):
        """Field ``field`` of the last record."""
        return array.__getitem__(self, array.__len__(self) - self.width + field)

    def set_last(self, field: int, value) -> None:
        array.__setitem__(self, array.__len__(self) - self.width + field, value)


class StepLog:
    """Per-step records of one replica, kept compact (expanded by :func:`infersim.serving.metrics.iterations`).

    * ``singles``: steps decided one at a time, as records ``(step, start_s, duration_s,
      prefill_tokens, prefill_seqs, decode_seqs, kv_blocks_used, itl_weight, itl_gap_s, swap_s,
      preempted, *loads)`` with ``loads`` = (pairs, rect pairs, prefill KV tokens, decode pairs)
      per window.
    * ``runs``: decode runs ``(first step, k, batch, first decode pairs, kv_blocks_used before, clock
      at start, first step's itl gap, first step's itl weight)``, the residue counts that give each
      step's new KV blocks (``run_cnts``), and their times as ``pieces`` ``(first step, m, start_s,
      a, c, i0)``: ``m`` steps whose durations are ``a + c * i`` for ``i = i0, i0 + 1, ...``, starting
      at ``start_s + i a + c i (i - 1) / 2`` (one linear piece of the decode line; ``i0`` > 0 when
      the piece began in a stretch of the log already drained).
      A run that continues the previous one exactly (same batch, no step between, nothing new in
      its first step) extends that record instead of adding one.
    * ``batches``: static-batching decode phases ``(first step, k, batch, first decode pairs,
      kv_blocks_used, itl weights, loads or None, starts, durations)``.
    * ``gaps_s``: inter-token gaps of single tokens: a request's first decode after its prefill, its
      first token after a recompute or a swap-in.
    """

    def __init__(self, n_windows: int = 1, block_size: int = 16) -> None:
        self.n_steps = 0
        self.singles = Records("d", 11 + 4 * n_windows)
        self.runs = Records("d", 8)
        self.run_cnts = Records("i", block_size)
        self.pieces = Records("d", 6)
        self.batches: list[tuple] = []
        self.gaps_s = array("d")

    def empty(self) -> "StepLog":
        """A new, empty log of the same shape."""
        return StepLog((self.singles.width - 11) // 4, self.run_cnts.width)
