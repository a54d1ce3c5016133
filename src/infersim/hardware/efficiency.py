"""The efficiency section of a device file, in per-family parts (the calibratable model).

The roofline (:mod:`infersim.perf.roofline`) prices every kernel with achievable fractions of
peak and fixed costs. These numbers come in sections, one per kernel family, each fitted by
one calibration stage (:mod:`infersim.fidelity.stages`):

* ``core``: the general compute and memory ramps and launch cost (elementwise kernels, and
  the defaults every family falls back to);
* ``gemm``: the GEMM library's tiles, split-K, matrix-vector kernels and call costs;
* ``attention``: fused (FlashAttention-style) attention, prefill and what decode shares;
* ``decode``: the decode-attention kernels (FlashDecoding / XQA / masked MHA);
* ``mla``: other values of the attention fields for MLA rows (DeepSeek-V2's own kernels);
* ``moe``: MoE grouped GEMMs;
* ``collectives``: NCCL-style collectives (alpha-beta terms);
* ``cache``: the warm last-level cache of a kernel microbenchmark.

Every field also has a *flat name* (``gemm_tiles``, ``decode_attention_cta_us``, ...), the
name it had when the section was one block: a device file may use either layout (flat keys
directly under ``efficiency:``, or the sections), ``mla.overrides`` keys and calibration
parameters are flat names, and ``EfficiencySpec`` reads and copies by flat name too
(``eff.gemm_tiles``, ``eff.model_copy(update={"gemm_tiles": ...})``). The flat name of a field
is its pydantic alias, so it is written once, beside the field.

The saturating efficiency ``eff(x) = max_fraction * x / (x + half)`` of the roofline: a
kernel doing little work runs far below peak (launch, pipeline fill, tail effects) and a
large one approaches ``max_fraction``; ``x`` is FLOPs for compute and bytes for memory.
Defaults are generic; ``infersim calibrate`` fits them to measurements. Every refinement
below is off by default, so an uncalibrated device keeps the plain model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .sections import (
    COLLECTIVE_KINDS,
    FLAT_FIELDS,
    MLA_OVERRIDABLE,
    SECTIONS,
    AttentionEfficiency,
    CacheEfficiency,
    CollectiveEfficiency,
    CoreEfficiency,
    DecodeEfficiency,
    DecodeKernel,
    GemmEfficiency,
    MlaEfficiency,
    MoeEfficiency,
    Source,
    _by_dtype,
    _Strict,
)

__all__ = ["COLLECTIVE_KINDS", "FLAT_FIELDS", "MLA_OVERRIDABLE", "SECTIONS", "DecodeKernel", "EfficiencySpec"]


class EfficiencySpec(_Strict):
    """Achievable fractions of peak and fixed overheads of one device, in per-family sections
    (see the module docstring). Reads, copies and device files may name fields by their flat
    names; the cross-family rules (which value a row of one kind sees) are the methods below."""

    core: CoreEfficiency = Field(default_factory=CoreEfficiency)
    gemm: GemmEfficiency = Field(default_factory=GemmEfficiency)
    attention: AttentionEfficiency = Field(default_factory=AttentionEfficiency)
    decode: DecodeEfficiency = Field(default_factory=DecodeEfficiency)
    mla: MlaEfficiency = Field(default_factory=MlaEfficiency)
    moe: MoeEfficiency = Field(default_factory=MoeEfficiency)
    collectives: CollectiveEfficiency = Field(default_factory=CollectiveEfficiency)
    cache: CacheEfficiency = Field(default_factory=CacheEfficiency)
    source: Source = Field(default="infersim generic defaults (uncalibrated)", min_length=3)

    @model_validator(mode="before")
    @classmethod
    def _flat_layout(cls, data: Any) -> Any:
        """Accept the flat layout (every field directly under ``efficiency:`` by its flat name,
        what device files and ``infersim calibrate`` wrote before the sections), alone or mixed
        with sections; a field given twice is an error."""
        if not isinstance(data, Mapping) or not any(key in FLAT_FIELDS for key in data):
            return data
        return _route(data, {})

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> EfficiencySpec:
        """A copy with ``update`` applied; its keys are section names, ``source`` or flat field
        names (no validation, as pydantic's ``model_copy``)."""
        if update and any(key not in SECTIONS and key != "source" for key in update):
            update = _route(update, self)
        return super().model_copy(update=update, deep=deep)

    def __getattr__(self, name: str) -> Any:
        # a field by its flat name (``eff.gemm_tiles`` is ``eff.gemm.tiles``)
        where = FLAT_FIELDS.get(name)
        if where is None:
            return super().__getattr__(name)
        return getattr(getattr(self, where[0]), where[1])

    def flat(self) -> dict[str, Any]:
        """Every field by its flat name (and ``source``)."""
        out = {flat: getattr(getattr(self, section), short) for flat, (section, short) in FLAT_FIELDS.items()}
        out["source"] = self.source
        return out

    # ----- cross-family rules ----------------------------------------------------------------
    def tiles_for(self, dtype: str) -> list[tuple[int, int]]:
        """Candidate GEMM tiles in ``dtype`` (:meth:`GemmEfficiency.tiles_for`)."""
        return self.gemm.tiles_for(dtype)

    def for_mla(self) -> EfficiencySpec:
        """This section as MLA attention rows see it (``mla.overrides`` applied).

        An override of a plain field (``decode_attention_cta_us``) also hides the attention
        rows' per-dtype entries of that field (``decode_attention_cta_us_by_dtype``), which
        would otherwise take precedence over it: MLA gets its own value in every dtype, unless
        it overrides per-dtype entries too."""
        overrides = self.mla.overrides
        if not overrides:
            return self
        update: dict[str, object] = {}
        per_dtype_set = {key.partition(".")[0] for key in overrides if "." in key}
        for key, number in overrides.items():
            name, _, dtype = key.partition(".")
            if dtype:
                table = dict(update.get(name, getattr(self, name)))
                table[dtype] = number
                update[name] = table
            else:
                update[name] = number
                by_dtype = f"{name}_by_dtype"
                if by_dtype in FLAT_FIELDS and by_dtype not in per_dtype_set:
                    update[by_dtype] = {}
        return self.model_copy(update=update)

    def collective_group_factor(self, group_size: int) -> float:
        """:meth:`CollectiveEfficiency.group_factor`."""
        return self.collectives.group_factor(group_size)

    def attention_fraction(self, dtype: str, head_dim=None):
        """Achievable fraction of a fused attention kernel in ``dtype`` at ``head_dim`` (a number
        or an array; 0 = unknown): the fallback fraction where the dtype lists its native head
        sizes and ``head_dim`` is not one of them, else :meth:`compute_fraction`."""
        base = self.compute_fraction(dtype, attention=True)
        native = self.attention.native_head_dims_by_dtype.get(dtype)
        fallback = self.attention.fallback_fraction_by_dtype.get(dtype)
        if native is None or fallback is None or head_dim is None:
            return base
        size = np.asarray(head_dim, dtype=np.float64)
        out = np.where((size <= 0) | np.isin(np.rint(size), native), base, fallback)
        return float(out) if out.ndim == 0 else out

    def attention_row_fraction(self, dtype: str, head_dim=None, *, decode: bool = False, mla: bool = False):
        """Achievable fraction of a fused attention row: MLA rows the attention fraction (their
        ``mla.overrides`` applied by the caller), GQA decode rows their kernels' own
        (``decode.max_fraction``) where set, prefill rows :meth:`attention_fraction` at
        ``head_dim``."""
        if mla:
            return self.compute_fraction(dtype, attention=True)
        if decode:
            if self.decode.max_fraction is not None:
                return self.decode.max_fraction
            return self.compute_fraction(dtype, attention=True)
        return self.attention_fraction(dtype, head_dim)

    def compute_fraction(self, dtype: str, attention: bool = False) -> float:
        """Achievable fraction of peak for matrix work in ``dtype`` (attention kernels apart).

        A dtype without its own entry uses the entry of the dtype it falls back to
        (``fp4`` -> ``fp8`` -> ``bf16`` ..., as :meth:`Device.peak_flops` does), else the
        general fraction.
        """
        att = self.attention
        if attention and (att.max_fraction is not None or att.max_fraction_by_dtype):
            found = _by_dtype(att.max_fraction_by_dtype, dtype)
            if found is not None:
                return found
            if att.max_fraction is not None:
                return att.max_fraction
        core = self.core
        found = _by_dtype(core.compute_max_fraction_by_dtype, dtype)
        return core.compute_max_fraction if found is None else found

    def attention_terms(self, decode: bool, dtype: str | None = None) -> tuple[float | None, float | None, float | None]:
        """(memory fraction, per-query bandwidth fraction, fixed cost us) of a fused attention
        kernel, prefill or decode, computing in ``dtype``; None = not set (the general memory
        fraction / no per-query term / kernel_overhead_us)."""
        att, dec = self.attention, self.decode
        mem, query, over = att.memory_max_fraction, att.query_bandwidth_fraction, att.overhead_us
        query_by_dtype = _by_dtype(att.query_bandwidth_fraction_by_dtype, dtype)
        if query_by_dtype is not None:
            query = query_by_dtype
        if decode:
            by_dtype = _by_dtype(dec.memory_max_fraction_by_dtype, dtype)
            if by_dtype is not None:
                mem = by_dtype
            elif dec.memory_max_fraction is not None:
                mem = dec.memory_max_fraction
            if dec.query_bandwidth_fraction is not None:
                query = dec.query_bandwidth_fraction
            if dec.overhead_us is not None:
                over = dec.overhead_us
        return mem, query, over

    def warm_cache_terms(self, attention: bool, dtype: str | None = None) -> tuple[float | None, float]:
        """:meth:`CacheEfficiency.terms`."""
        return self.cache.terms(attention, dtype)

    def gemm_fraction(self, dtype: str, grouped: bool = False) -> float:
        """Achievable fraction of a GEMM in ``dtype``; ``grouped``: a MoE grouped GEMM."""
        if grouped:
            found = _by_dtype(self.moe.max_fraction_by_dtype, dtype)
            if found is not None:
                return found
        return self.compute_fraction(dtype)

    def decode_kernel(self, dtype: str, per_head: bool = False) -> DecodeKernel:
        """:meth:`DecodeEfficiency.kernel`."""
        return self.decode.kernel(dtype, per_head)

    @property
    def per_head_decode(self) -> bool:
        """Whether the device has a per-query-head decode kernel (MHA, large query groups)."""
        return self.decode.per_head

    @property
    def block_terms(self) -> bool:
        """Whether any per-thread-block attention term is set."""
        att, dec = self.attention, self.decode
        return (att.softmax_fraction is not None or att.cta_us is not None
                or dec.cta_us is not None or bool(dec.cta_us_by_dtype)
                or dec.per_head or dec.parallel_half is not None
                or bool(dec.parallel_half_by_dtype)
                or att.parallel_half is not None)

    def grouped_memory_fraction(self, dtype: str) -> float | None:
        """Memory fraction of a MoE grouped GEMM in ``dtype`` (None: not set)."""
        return _by_dtype(self.moe.memory_fraction_by_dtype, dtype)

    def gemm_overhead_us(self, dtype: str) -> float:
        """Fixed cost of one GEMM call in ``dtype`` (falls back like :meth:`compute_fraction`)."""
        found = _by_dtype(self.gemm.overhead_us_by_dtype, dtype)
        return self.core.kernel_overhead_us if found is None else found


def _route(data: Mapping[str, Any], base: EfficiencySpec | Mapping) -> dict[str, Any]:
    """``data`` with its flat keys moved into their sections: for validation (``base`` = {}: the
    sections are dicts) or for a copy (``base`` = the spec copied: sections are copied models)."""
    out: dict[str, Any] = {}
    moved: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        where = FLAT_FIELDS.get(key)
        if where is None:
            if isinstance(base, EfficiencySpec) and key not in SECTIONS and key != "source":
                raise KeyError(f"unknown efficiency field '{key}'")
            out[key] = value
            continue
        section, short = where
        if short in moved.setdefault(section, {}):
            raise ValueError(f"'{key}' is given twice")
        moved[section][short] = (key, value)
    for section, named in moved.items():
        given = out.get(section)
        if isinstance(base, EfficiencySpec):
            current = given if given is not None else getattr(base, section)
            out[section] = current.model_copy(update={short: value for short, (_, value) in named.items()})
            continue
        # validated by their flat names, so that an error names the key the file has
        values = {flat: value for flat, value in named.values()}
        if given is None:
            out[section] = values
            continue
        if isinstance(given, BaseModel):
            given = given.model_dump()
        if not isinstance(given, Mapping):
            out[section] = given  # the section's own validation names the problem
            continue
        aliases = {short: info.alias or short for short, info in SECTIONS[section].model_fields.items()}
        both = [aliases[s] for s in named if s in given or aliases[s] in given]
        if both:
            raise ValueError(f"'{both[0]}' is given twice (flat and in section '{section}')")
        out[section] = {**given, **values}
    return out
