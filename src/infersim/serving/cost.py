"""Step costs for the simulator's hot loop, built on the public API of
:class:`~infersim.perf.step_time.StepTimeModel` only.

The simulator needs the time of every step. ``StepTimeModel.step_time_s`` is exact
and takes a few microseconds; a long simulation runs millions of steps, most of them
decode-only steps of an unchanged batch whose contexts all grow by one token. Two
facts make those cheap without changing the answer:

* **Decode steps are a convex piecewise-linear function of the decode pairs.** For a
  full-attention model and a fixed number ``B`` of decoding sequences, the only
  varying input is the decode pairs ``x`` (sum of contexts). Every attention row's
  FLOPs and bytes are linear in ``x``, and under the ramp-up efficiency
  ``eff = max * w / (w + half)`` its compute and memory times are affine in ``x``
  (``(w + half) / (max * peak)``); the roofline takes their max, and the step sums
  the rows: a convex piecewise-linear ``f_B(x)``. :meth:`StepCost.decode_segments`
  recovers it by probing ``step_time_s``: for a convex function, if ``f`` equals its
  chord at an interior point it is linear on the whole interval (and the chord is
  within twice that gap everywhere), so bisection until the gap is below
  ``1e-12 f`` finds every linear piece. Each step then costs one multiply-add.
* **FLOPs and bytes are linear in the attention loads** once the set of active
  kernels is fixed (which depends only on whether there are prefill tokens and
  decodes), so ``work = W(prefill_tokens, prefill_seqs, decode_seqs) + c . loads``,
  with ``W`` memoized per distinct triple and ``c`` read off by differences.

Mixed steps (with prefill chunks) of full-attention models use :class:`_RowRoofline`,
which evaluates ``StepTimeModel``'s tabulated rows with the same roofline on sparse,
precompiled coefficients (about four times faster than ``step_time_s``). It reads the
model's internal tables, so it is checked against ``step_time_s`` on random batches at
construction and dropped (:attr:`StepCost.fast_mixed` False) if the two ever disagree.
All three shortcuts fall back to the public calls when their check fails: slower,
never different.

**Runtime.** With a serving runtime (:mod:`infersim.runtime`) every step time is the runtime's
wall time of the kernels' time (host work added, or overlapped), and a decode-only step of ``b``
sequences runs its kernels at the runtime's CUDA-graph size ``g(b) >= b`` with the same decode
pairs (padding slots have no context). The decode line stays convex and piecewise linear in the
decode pairs (a constant added to it, or its maximum with a constant), so the fast path holds.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InfersimError
from ..perf.step_time import StepTimeModel
from ..runtime import Runtime

#: bisection stops when a chord is within this fraction of the step time of the curve
PWL_TOLERANCE = 1e-12


def _check_finite(rows, scalars) -> None:
    """InfersimError if a precompiled coefficient is not finite (a device or model figure so large or
    small that the cost arithmetic overflows): the simulation would report inf or nan as a latency."""
    stack = [rows, scalars]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
            raise InfersimError("the cost model's coefficients overflow (a device or model figure is far outside "
                                "the physical range): check the hardware file's peaks, bandwidths and overheads")


class StepCost:
    """Step time and work of one replica for the serving simulator (see module docstring).

    ``max_context_tokens`` bounds the context of any sequence (sets the probed range); ``runtime``
    adds a serving engine's host time and CUDA-graph padding (None: the kernels only).
    """

    def __init__(self, stm: StepTimeModel, max_context_tokens: int, verify: bool = True,
                 runtime: Runtime | None = None) -> None:
        self.stm = stm
        self.runtime = runtime
        #: the runtime when it changes step times (None for the kernels-only model: no wrapping at all)
        self._rt = runtime if runtime is not None and not runtime.identity else None
        self.windows = list(stm.windows)
        self.full_attention = self.windows == [None]
        self.max_context_tokens = max(int(max_context_tokens), 2)
        self._segments: dict[int, tuple] = {}
        self._w_cache: dict[tuple[int, int, int], tuple[float, float]] = {}
        self._zero = {w: (0.0, 0.0, 0.0, 0.0) for w in self.windows}
        self.fast = self.full_attention
        self.fast_mixed = False
        self._rows: _RowRoofline | None = None
        if self.full_attention:
            try:
                self._rows = _RowRoofline(stm)
                self.fast_mixed = True
            except (AttributeError, KeyError, IndexError, TypeError, ValueError):
                self._rows = None
        self._work_fast = True
        try:
            self._work_coeffs()
        except (ArithmeticError, ValueError):  # pragma: no cover - defensive
            self._work_fast = False
        if verify:
            self._verify()

    # ----- time -------------------------------------------------------------------------------
    def _kernels_full(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int, pairs: float,
                      rect: float, kv_read: float, decode_pairs: float) -> float:
        """Kernel time of a full-attention step from the batch's aggregate loads."""
        if self.fast_mixed:
            return self._rows.time(prefill_tokens, prefill_seqs, decode_seqs, pairs, rect, kv_read, decode_pairs)
        return self.stm.step_time_s(prefill_tokens, prefill_seqs, decode_seqs,
                                    {None: (pairs, rect, kv_read, decode_pairs)})

    def time_full(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int, pairs: float,
                  rect: float, kv_read: float, decode_pairs: float) -> float:
        """Step time of a full-attention model from the batch's aggregate loads (runtime included)."""
        rt = self._rt
        if rt is None:
            return self._kernels_full(prefill_tokens, prefill_seqs, decode_seqs, pairs, rect, kv_read, decode_pairs)
        kb = rt.graph_batch(decode_seqs) if prefill_tokens == 0 else decode_seqs
        kernels = self._kernels_full(prefill_tokens, prefill_seqs, kb, pairs, rect, kv_read, decode_pairs)
        return rt.step_time_s(kernels, prefill_seqs + decode_seqs)

    @property
    def time_full_fn(self):
        """The fastest callable with the signature of :meth:`time_full` (bind it once in hot loops)."""
        if self._rt is None and self.fast_mixed:
            return self._rows.time
        return self.time_full

    def time_loads(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int, loads: dict) -> float:
        """Step time from per-window loads (any model; runtime included)."""
        rt = self._rt
        if rt is None:
            return self.stm.step_time_s(prefill_tokens, prefill_seqs, decode_seqs, loads)
        kb = rt.graph_batch(decode_seqs) if prefill_tokens == 0 else decode_seqs
        return rt.step_time_s(self.stm.step_time_s(prefill_tokens, prefill_seqs, kb, loads),
                              prefill_seqs + decode_seqs)

    def _decode_exact(self, batch: int, x: float) -> float:
        rt = self._rt
        if rt is None:
            return self.stm.step_time_s(0, 0, batch, {None: (0.0, 0.0, 0.0, float(x))})
        kernels = self.stm.step_time_s(0, 0, rt.graph_batch(batch), {None: (0.0, 0.0, 0.0, float(x))})
        return rt.step_time_s(kernels, batch)

    def decode_segments(self, batch: int) -> tuple:
        """Linear pieces ``(x_lo, x_hi, f_lo, slope)`` covering ``x`` in ``[batch, batch * max_context]``
        of the time of a decode-only step of ``batch`` sequences at ``x`` decode pairs (full attention)."""
        seg = self._segments.get(batch)
        if seg is None:
            seg = self._probe(batch)
            self._segments[batch] = seg
        return seg

    def _probe(self, batch: int) -> tuple:
        lo, hi = batch, batch * self.max_context_tokens
        f = self._decode_exact
        out: list[tuple[float, float, float, float]] = []
        stack = [(lo, hi, f(batch, lo), f(batch, hi))]
        while stack:
            a, b, fa, fb = stack.pop()
            if b - a <= 1:
                out.append((float(a), float(b), fa, (fb - fa) / (b - a) if b > a else 0.0))
                continue
            m = (a + b) // 2
            fm = f(batch, m)
            chord = fa + (fb - fa) * (m - a) / (b - a)
            if abs(chord - fm) <= PWL_TOLERANCE * fb:
                out.append((float(a), float(b), fa, (fb - fa) / (b - a)))
            else:
                stack.append((m, b, fm, fb))  # right half popped after the left one
                stack.append((a, m, fa, fm))
        return tuple(out)

    def ensure_context(self, max_context_tokens: int) -> None:
        """Widen the probed range of the decode line to contexts of ``max_context_tokens``."""
        if max_context_tokens > self.max_context_tokens:
            self.max_context_tokens = int(max_context_tokens)
            self._segments.clear()

    def decode_time(self, batch: int, decode_pairs: float) -> float:
        """Time of one decode-only step (the piecewise-linear form when fast)."""
        if not self.fast:
            return self.time_full(0, 0, batch, 0.0, 0.0, 0.0, decode_pairs)
        for x_lo, x_hi, f_lo, slope in self.decode_segments(batch):
            if decode_pairs <= x_hi:
                return f_lo + slope * (decode_pairs - x_lo)
        return self.time_full(0, 0, batch, 0.0, 0.0, 0.0, decode_pairs)

    # ----- work (FLOPs, bytes) for MFU / bandwidth utilization --------------------------------
    def _ref_loads(self, prefill_tokens: int, decode_seqs: int) -> dict:
        """Positive loads consistent with the batch (so the same kernels are active as in a real step)."""
        p = float(prefill_tokens)
        return {w: (p, p, 1.0 if p else 0.0, float(decode_seqs)) for w in self.windows}

    def _work_coeffs(self) -> None:
        base_pt, base_b = 64, 8
        ref = self._ref_loads(base_pt, base_b)
        f0, b0 = self.stm.step_work(base_pt, 1, base_b, ref)
        coeffs = []
        for w in self.windows:
            for i in range(4):
                loads = {k: list(v) for k, v in ref.items()}
                loads[w][i] += 1000.0
                f1, b1 = self.stm.step_work(base_pt, 1, base_b, {k: tuple(v) for k, v in loads.items()})
                coeffs.append(((f1 - f0) / 1000.0, (b1 - b0) / 1000.0))
        self._cf = np.array([c[0] for c in coeffs])
        self._cb = np.array([c[1] for c in coeffs])
        self._cf_list = self._cf.tolist()
        self._cb_list = self._cb.tolist()

    def _w(self, pt: int, ps: int, b: int) -> tuple[float, float]:
        key = (pt, ps, b)
        hit = self._w_cache.get(key)
        if hit is None:
            ref = self._ref_loads(pt, b)
            f, nb = self.stm.step_work(pt, ps, b, ref)
            vec = [x for w in self.windows for x in ref[w]]
            hit = (f - sum(c * x for c, x in zip(self._cf_list, vec)),
                   nb - sum(c * x for c, x in zip(self._cb_list, vec)))
            self._w_cache[key] = hit
        return hit

    @property
    def work_fast(self) -> bool:
        """Whether :meth:`work` and :meth:`decode_work` use the linear decomposition (else per step)."""
        return self._work_fast

    def decode_work(self, batch: int) -> tuple[float, float, float, float]:
        """FLOPs and bytes of a decode-only step of ``batch`` sequences at ``x`` decode pairs (full
        attention): ``(flops0 + flops1 * x, bytes0 + bytes1 * x)``, returned as the four numbers."""
        w_f, w_b = self._w(0, 0, batch)
        return w_f, float(self._cf[3]), w_b, float(self._cb[3])

    def work(self, prefill_tokens: np.ndarray, prefill_seqs: np.ndarray, decode_seqs: np.ndarray,
             loads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FLOPs and bytes per device of many steps. ``loads`` is (n, 4 * len(windows)):
        (pairs, rect, kv_read, decode_pairs) per window, in :attr:`windows` order."""
        pt = np.asarray(prefill_tokens, dtype=np.int64)
        ps = np.asarray(prefill_seqs, dtype=np.int64)
        ds = np.asarray(decode_seqs, dtype=np.int64)
        n = pt.size
        if n == 0:
            return np.zeros(0), np.zeros(0)
        loads = np.asarray(loads, dtype=np.float64).reshape(n, 4 * len(self.windows))
        if not self._work_fast:
            flops, nbytes = np.empty(n), np.empty(n)
            for i in range(n):
                d = {w: tuple(loads[i, 4 * j:4 * j + 4]) for j, w in enumerate(self.windows)}
                flops[i], nbytes[i] = self.stm.step_work(int(pt[i]), int(ps[i]), int(ds[i]), d)
            return flops, nbytes
        base_f = np.empty(n)
        base_b = np.empty(n)
        decode_only = (pt == 0) & (ps == 0)
        if decode_only.any():  # W depends on the batch size only: a table indexed by it
            b = ds[decode_only]
            present = np.flatnonzero(np.bincount(b))
            table = np.zeros((2, int(b.max()) + 1))
            for v in present.tolist():
                table[:, v] = self._w(0, 0, v)
            base_f[decode_only] = table[0, b]
            base_b[decode_only] = table[1, b]
        rest = ~decode_only
        if rest.any():
            p, q, b = pt[rest], ps[rest], ds[rest]
            key = (p * (int(q.max()) + 1) + q) * (int(b.max()) + 1) + b
            uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            vals = np.array([self._w(int(p[i]), int(q[i]), int(b[i])) for i in first.tolist()]).reshape(-1, 2)
            base_f[rest] = vals[inverse.reshape(-1), 0]
            base_b[rest] = vals[inverse.reshape(-1), 1]
        return base_f + loads @ self._cf, base_b + loads @ self._cb

    # ----- self-check ---------------------------------------------------------------------------
    def _verify(self) -> None:
        stm = self.stm
        rng = np.random.default_rng(12345)
        rows, want = [], []
        top = min(self.max_context_tokens, 9000)
        for trial in range(48):
            n_pre = int(rng.integers(0, 4)) if trial % 3 else 0
            n_dec = int(rng.integers(0 if n_pre else 1, 48 if trial % 2 else 400))
            chunks = rng.integers(1, 700 if trial % 4 else 8192, n_pre).astype(float)
            pasts = rng.integers(0, max(top - 700, 1), n_pre).astype(float)
            ctx = rng.integers(1, top, n_dec).astype(float)
            loads = stm.loads_for(chunks, pasts, ctx)
            pt = int(chunks.sum())
            if self.fast_mixed:
                exact = stm.step_time_s(pt, n_pre, n_dec, loads)
                p, r, k, d = loads[None]
                if not math.isclose(self._rows.time(pt, n_pre, n_dec, p, r, k, d), exact, rel_tol=1e-12,
                                    abs_tol=1e-18):
                    self.fast_mixed = False
            if self.fast and n_pre == 0:
                exact = self._decode_exact(n_dec, loads[None][3])
                got = self.decode_time(n_dec, loads[None][3])
                if not math.isclose(got, exact, rel_tol=1e-9, abs_tol=1e-15):
                    self.fast = False
                    self._segments.clear()
            rows.append((pt, n_pre, n_dec, [x for w in self.windows for x in loads[w]]))
            want.append(stm.step_work(pt, n_pre, n_dec, loads))
        if self._work_fast:
            flops, nbytes = self.work(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                                      np.array([r[2] for r in rows]), np.array([r[3] for r in rows]))
            for i, (wf, wb) in enumerate(want):
                if not (math.isclose(flops[i], wf, rel_tol=1e-9) and math.isclose(nbytes[i], wb, rel_tol=1e-9)):
                    self._work_fast = False
                    self._w_cache.clear()
                    break


class _RowRoofline:
    """``StepTimeModel.step_time_s`` for one full-attention model, on precompiled sparse rows.

    Mirrors ``StepTimeModel._scalar_row_time``: per attention row, FLOPs and bytes are dot
    products with the features (prefill tokens, pairs, rectangular pairs, prefill KV tokens,
    decode sequences, decode pairs); weights are read once when the kernel runs; compute time
    has the ramp-up and the tiled (or wave-quantized) GEMM efficiency; a GEMM above the GEMV
    size may use another memory fraction; fused attention may add a query-read term; the row
    costs ``(max(compute, memory) + query + overhead) * count``. Only nonzero terms are kept, in
    their original order, so the result is the same float. Rows with keys this class does not
    know are refused (``ValueError``): the model changed, and :class:`StepCost` falls back to
    the public call.
    """

    KNOWN_KEYS = frozenset({"flops", "bytes", "act", "weight_bytes", "m", "n", "k", "is_gemm", "peak", "cmax",
                            "chalf", "mmax", "query_bw", "tiles", "k_half", "gemv_max_m", "gemm_mmax", "ramp",
                            "count", "kernels", "overhead_s"})

    def __init__(self, stm: StepTimeModel) -> None:
        self.stm = stm
        _, _, mhalf, _, tm, tn, units, bw = (float(x) for x in stm._eff)
        self.mhalf, self.bw, self.tm, self.tn, self.units = mhalf, bw, int(tm), tn, int(units)
        rows = []
        for r in stm._attention_rows:
            unknown = set(r) - self.KNOWN_KEYS
            if unknown:
                raise ValueError(f"attention rows have new fields {sorted(unknown)}")
            if any(len(r[key]) != 6 for key in ("flops", "bytes", "m", "act")):
                raise ValueError("unexpected attention row layout")

            def sparse(key):
                return tuple((i, float(c)) for i, c in enumerate(r[key]) if c)

            chalf = float(r["chalf"])
            gemm_mmax = r["gemm_mmax"]
            rows.append((sparse("flops"), sparse("bytes"), sparse("m"), sparse("act"), float(r["weight_bytes"]),
                         bool(r["is_gemm"]), float(r["n"]), float(r["k"]), float(r["peak"]), float(r["cmax"]),
                         chalf if (chalf > 0 and r["ramp"]) else 0.0, float(r["mmax"]),
                         None if gemm_mmax is None else float(gemm_mmax), float(r["gemv_max_m"]),
                         tuple((float(a), float(b)) for a, b in r["tiles"]), float(r["k_half"]),
                         float(r["query_bw"]), float(r["overhead_s"]), float(r["count"])))
        self.rows = tuple(rows)
        self._tables()

    def _tables(self) -> None:
        self.tok = self.stm._token_table[0].tolist()
        self.log = self.stm._logit_table[0].tolist()
        self.time = self._compile()

    def _grow_and_time(self, pt, ps, b, pairs, rect, kv_read, dp) -> float:
        self.stm.step_time_s(pt, ps, b, {None: (pairs, rect, kv_read, dp)})  # grows the tables
        self._tables()
        return self.time(pt, ps, b, pairs, rect, kv_read, dp)

    def _compile(self):
        """:meth:`time_interpreted` specialized to this model's rows: the same operations in the
        same order, with the coefficients inlined and the branches that cannot run removed, as
        Python source compiled once (about twice as fast; checked against ``step_time_s`` by
        :meth:`StepCost._verify` like the interpreted form)."""

        def linear(sparse) -> str:
            if not sparse:
                return "0"
            return " + ".join(f"{c!r} * f{i}" for i, c in sparse)

        lines = [
            "def time(pt, ps, b, pairs, rect, kv_read, dp):",
            "    tokens = pt + b",
            "    if tokens == 0:",
            "        return 0.0",
            "    logits = ps + b",
            "    if tokens >= NTOK or logits >= NLOG:",
            "        return grow(pt, ps, b, pairs, rect, kv_read, dp)",
            "    f0 = float(pt); f1 = pairs; f2 = rect; f3 = kv_read; f4 = float(b); f5 = dp",
            "    attn = 0",
        ]
        consts = {"NTOK": len(self.tok), "NLOG": len(self.log), "grow": self._grow_and_time, "tok": self.tok,
                  "log": self.log, "ceil": math.ceil}
        mhalf, bw, units = self.mhalf, self.bw, self.units
        for j, (fl, by, mm, act, wbytes, is_gemm, n, k, peak, cmax, chalf, mmax, gemm_mmax, gemv_max_m, tiles,
                k_half, query_bw, overhead_s, count) in enumerate(self.rows):
            consts[f"TILES{j}"] = tiles
            body = [f"flops = 0 + {linear(fl)}", f"nbytes = 0 + {linear(by)}",
                    "if flops > 0 or nbytes > 0:",
                    f"    nbytes += {wbytes!r}"]
            row_mmax = repr(mmax)
            if is_gemm:
                body.append(f"    m = 0 + {linear(mm)}")
                if gemm_mmax is not None:
                    row_mmax = f"({gemm_mmax!r} if m > {gemv_max_m!r} else {mmax!r})"
            body += ["    compute = 0.0", "    if flops > 0:",
                     (f"        e = {cmax!r} * flops / (flops + {chalf!r})" if chalf > 0 else f"        e = {cmax!r}")]
            if is_gemm and tiles:
                body += ["        util = 1.0",
                         f"        if m > 0 and {n!r} > 0 and m > {gemv_max_m!r}:",
                         "            util = 0.0",
                         f"            for ta, tb in TILES{j}:",
                         f"                waves = ceil(ceil(m / ta) * ceil({n!r} / tb) / {units})",
                         f"                util = max(util, (m * {n!r}) / (max(waves, 1) * ({units} * ta * tb)))"]
                if k_half > 0 and k > 0:
                    body.append(f"            util *= {k!r} / ({k!r} + {k_half!r})")
                body.append("        e *= util")
            elif is_gemm:
                body += [f"        n_tiles = ceil(m / {self.tm}) * ceil({n!r} / {self.tn!r})",
                         f"        if n_tiles > {units}:",
                         f"            e *= n_tiles / (ceil(n_tiles / {units}) * {units})"]
            body += [f"        compute = flops / ({peak!r} * e)",
                     "    memory = 0.0",
                     "    if nbytes > 0:",
                     (f"        e = {row_mmax} * nbytes / (nbytes + {mhalf!r})" if mhalf > 0
                      else f"        e = {row_mmax}"),
                     f"        memory = nbytes / ({bw!r} * e)"]
            if query_bw > 0:
                body.append(f"    query = (0 + {linear(act)}) / {query_bw!r}")
            else:
                body.append("    query = 0.0")
            body.append(f"    attn += (max(compute, memory) + query + {overhead_s!r}) * {count!r}")
            lines += ["    " + line for line in body]
        lines.append("    return (tok[tokens] + log[logits]) + attn")
        _check_finite(self.rows, (mhalf, bw, units))
        # repr() of an infinite or NaN float is 'inf' / 'nan': defined here so that the source stays
        # valid Python whatever the numbers (the check above makes them an error first)
        namespace: dict = dict(consts, inf=math.inf, nan=math.nan)
        exec(compile("\n".join(lines), "<infersim.serving.cost._RowRoofline>", "exec"), namespace)  # noqa: S102
        return namespace["time"]

    def time_interpreted(self, pt: int, ps: int, b: int, pairs: float, rect: float, kv_read: float,
                         dp: float) -> float:
        tokens = pt + b
        if tokens == 0:
            return 0.0
        logits = ps + b
        if tokens >= len(self.tok) or logits >= len(self.log):
            self.stm.step_time_s(pt, ps, b, {None: (pairs, rect, kv_read, dp)})  # grows the tables
            self._tables()
        f = (float(pt), pairs, rect, kv_read, float(b), dp)
        mhalf, bw, units = self.mhalf, self.bw, self.units
        attn = 0
        for (fl, by, mm, act, wbytes, is_gemm, n, k, peak, cmax, chalf, mmax, gemm_mmax, gemv_max_m, tiles,
             k_half, query_bw, overhead_s, count) in self.rows:
            flops = 0
            for i, c in fl:
                flops += c * f[i]
            nbytes = 0
            for i, c in by:
                nbytes += c * f[i]
            if flops <= 0 and nbytes <= 0:
                continue
            nbytes += wbytes
            m = 0.0
            if is_gemm:
                m = 0
                for i, c in mm:
                    m += c * f[i]
                if gemm_mmax is not None and m > gemv_max_m:
                    mmax = gemm_mmax
            compute = 0.0
            if flops > 0:
                e = cmax * flops / (flops + chalf) if chalf > 0 else cmax
                if is_gemm:
                    if tiles:
                        util = 1.0
                        if m > 0 and n > 0 and m > gemv_max_m:
                            util = 0.0
                            for ta, tb in tiles:
                                waves = math.ceil(math.ceil(m / ta) * math.ceil(n / tb) / units)
                                util = max(util, (m * n) / (max(waves, 1) * (units * ta * tb)))
                            if k_half > 0 and k > 0:
                                util *= k / (k + k_half)
                        e *= util
                    else:
                        n_tiles = math.ceil(m / self.tm) * math.ceil(n / self.tn)
                        if n_tiles > units:  # efficiency.wave_utilization (split-K below one wave)
                            e *= n_tiles / (math.ceil(n_tiles / units) * units)
                compute = flops / (peak * e)
            memory = 0.0
            if nbytes > 0:
                e = mmax * nbytes / (nbytes + mhalf) if mhalf > 0 else mmax
                memory = nbytes / (bw * e)
            query = 0.0
            if query_bw > 0:
                q = 0
                for i, c in act:
                    q += c * f[i]
                query = q / query_bw
            attn += (max(compute, memory) + query + overhead_s) * count
        return (self.tok[tokens] + self.log[logits]) + attn
