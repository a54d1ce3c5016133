"""One-shot compression methods behind one interface: ``(weight, calibration inputs) -> compressed layer``.

Every method takes a linear layer's weight ``W`` (out, in) and its calibration inputs ``X`` (rows, in)
and returns the compressed weight with its mask, and the low-rank adapters fitted to the error when
the spec asks for them. The registry :data:`METHODS` is the one place their keys are defined.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from ..errors import InfersimError, unknown_name_error
from .masks import layer_mask, nm_mask, row_mask
from .quant import group_params, quantize, quantize_groups
from .spec import CompressionSpec

#: Hessian dampening as a fraction of its mean diagonal (SparseGPT and GPTQ use 1%)
DAMP = 0.01
#: columns processed together by the OBS loops (SparseGPT / GPTQ's lazy batch updates)
BLOCK = 128
#: SLiM's adapter rank when the spec gives none (Mozaffari et al. 2024 report rank 10% of the width)
SLIM_DEFAULT_RANK = 0.1


@dataclass
class Calibration:
    """A layer's calibration inputs and the statistics methods derive from them (computed once)."""

    x: np.ndarray  # (rows, in)

    @cached_property
    def hessian(self) -> np.ndarray:
        """``H = 2 X^T X / rows`` (the layer-wise reconstruction loss's Hessian), float64."""
        x = self.x.astype(np.float32)  # the product in float32 (BLAS sgemm), accumulated per entry
        return 2.0 * (x.T @ x).astype(np.float64) / max(len(x), 1)

    @cached_property
    def inverse_cholesky(self) -> np.ndarray:
        """Upper Cholesky factor of the dampened ``H^-1`` (shared by the linears this input feeds)."""
        return _inverse_cholesky(self.hessian)

    @cached_property
    def column_norms(self) -> np.ndarray:
        """``||X_j||_2`` of every input feature (Wanda's activation norm)."""
        return np.linalg.norm(self.x.astype(np.float64), axis=0)


@dataclass
class CompressedLinear:
    weight: np.ndarray  # (out, in), pruned and/or quantized, float32
    mask: np.ndarray | None  # (out, in) bool: kept weights; None when nothing is pruned
    adapter_a: np.ndarray | None = None  # (out, r): W_eff = weight + adapter_a @ adapter_b
    adapter_b: np.ndarray | None = None  # (r, in)

    @property
    def effective(self) -> np.ndarray:
        if self.adapter_a is None:
            return self.weight
        return (self.weight + self.adapter_a @ self.adapter_b).astype(np.float32)


def select_mask(scores: np.ndarray, spec: CompressionSpec, per_row: bool) -> np.ndarray:
    """The kept weights of ``scores`` under ``spec``: N:M, per output row, or per layer."""
    if spec.n is not None:
        return nm_mask(scores, spec.n, spec.m)
    return row_mask(scores, spec.sparsity) if per_row else layer_mask(scores, spec.sparsity)


def lowrank_adapters(error: np.ndarray, column_norms: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``rank`` ``A B`` minimizing ``||(E - A B) diag(s)||_F`` with ``s`` the input norms: the SVD of
    the activation-weighted error, unweighted again (SLiM's saliency-based adapters, Mozaffari et al. 2024)."""
    s = np.where(column_norms > 0, column_norms, 1.0)
    u, sigma, vt = np.linalg.svd(error.astype(np.float64) * s[None, :], full_matrices=False)
    a = u[:, :rank] * sigma[:rank]
    b = vt[:rank] / s[None, :]
    return a.astype(np.float32), b.astype(np.float32)


class Method(ABC):
    key: ClassVar[str]
    #: the paper this method follows
    source: ClassVar[str]
    #: whether it can prune / quantize
    prunes: ClassVar[bool] = True
    quantizes: ClassVar[bool] = True

    def check(self, spec: CompressionSpec) -> None:
        if spec.prunes and not self.prunes:
            raise InfersimError(f"method '{self.key}' does not prune; use sparsegpt for sparsity with quantization")
        if spec.bits and not self.quantizes:
            raise InfersimError(f"method '{self.key}' does not quantize")
        if not spec.prunes and not spec.bits and not spec.lowrank:
            raise InfersimError("nothing to do: give a sparsity, bits or a low-rank fraction")

    def compress(self, weight: np.ndarray, calib: Calibration, spec: CompressionSpec) -> CompressedLinear:
        self.check(spec)
        out = self._compress(weight.astype(np.float64), calib, spec)
        rank = self._rank(spec, weight.shape)
        if rank and out.adapter_a is None:
            out.adapter_a, out.adapter_b = lowrank_adapters(weight - out.weight, calib.column_norms, rank)
        return out

    def _rank(self, spec: CompressionSpec, shape: tuple[int, int]) -> int:
        return int(round(spec.lowrank * min(shape)))

    @abstractmethod
    def _compress(self, w: np.ndarray, calib: Calibration, spec: CompressionSpec) -> CompressedLinear:
        ...


class Magnitude(Method):
    """Magnitude pruning: drop the smallest ``|W|`` of the layer (Han et al., NeurIPS 2015), then
    round-to-nearest quantization."""

    key = "magnitude"
    source = "Han et al., 'Learning both weights and connections for efficient neural networks', NeurIPS 2015"

    def _compress(self, w, calib, spec):
        mask = select_mask(np.abs(w), spec, per_row=False) if spec.prunes else None
        pruned = w * mask if mask is not None else w
        if spec.bits:
            pruned = quantize_groups(pruned, spec.bits, spec.group_size) * (mask if mask is not None else 1)
        return CompressedLinear(pruned.astype(np.float32), mask)


class Wanda(Magnitude):
    """Wanda: score ``|W_ij| * ||X_j||_2``, pruned per output row (Sun et al., ICLR 2024)."""

    key = "wanda"
    source = "Sun et al., 'A simple and effective pruning approach for large language models' (Wanda), ICLR 2024"

    def _compress(self, w, calib, spec):
        mask = select_mask(np.abs(w) * calib.column_norms[None, :], spec, per_row=True) if spec.prunes else None
        pruned = w * mask if mask is not None else w
        if spec.bits:
            pruned = quantize_groups(pruned, spec.bits, spec.group_size) * (mask if mask is not None else 1)
        return CompressedLinear(pruned.astype(np.float32), mask)


def _inverse_cholesky(h: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``) after dampening (SparseGPT / GPTQ's
    numerically stable form).

    With ``J`` the reversal permutation, the lower Cholesky factor ``R`` of ``J H J`` gives ``H = Ū Ū^T``
    with ``Ū = J R J`` upper triangular, so ``H^-1 = Ū^-T Ū^-1`` and ``U = Ū^-1``: one factorization and
    one triangular inverse instead of an inverse and a second factorization."""
    from scipy.linalg.lapack import dtrtri

    h = h.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h += DAMP * np.mean(np.diag(h)) * np.eye(len(h))
    try:
        r = np.linalg.cholesky(h[::-1, ::-1])
    except np.linalg.LinAlgError:
        raise InfersimError("calibration Hessian is not positive definite; give more calibration text") from None
    u, info = dtrtri(np.ascontiguousarray(r[::-1, ::-1]), lower=0)
    if info != 0:
        raise InfersimError("calibration Hessian is singular; give more calibration text")
    return np.triu(u)


class SparseGPT(Method):
    """SparseGPT: OBS pruning with the inverse Hessian, column by column, compensating the error in the
    columns still to come, with masks chosen per block of 128 columns and optional joint quantization
    (Frantar & Alistarh, ICML 2023, algorithm 1)."""

    key = "sparsegpt"
    source = "Frantar & Alistarh, 'SparseGPT: massive language models can be accurately pruned in one-shot', ICML 2023"

    def _compress(self, w, calib, spec):
        return obs_compress(w, calib.hessian, spec, prune=spec.prunes, u=calib.inverse_cholesky)


class GPTQ(Method):
    """GPTQ: OBS quantization column by column with per-group scales and error feedback
    (Frantar et al., ICLR 2023)."""

    key = "gptq"
    source = "Frantar et al., 'GPTQ: accurate post-training quantization for generative pre-trained transformers', ICLR 2023"
    prunes = False

    def check(self, spec):
        super().check(spec)
        if not spec.bits:
            raise InfersimError("method 'gptq' needs bits")

    def _compress(self, w, calib, spec):
        return obs_compress(w, calib.hessian, spec, prune=False, u=calib.inverse_cholesky)


def obs_compress(w: np.ndarray, hessian: np.ndarray, spec: CompressionSpec, prune: bool,
                 mask: np.ndarray | None = None, u: np.ndarray | None = None) -> CompressedLinear:
    """The OBS loop shared by SparseGPT and GPTQ (lazy batch updates of :data:`BLOCK` columns).

    For column ``i`` with inverse-Hessian Cholesky factor ``U``: the pruned / quantized value ``q``,
    the error ``(w - q) / U_ii`` is spread over the later columns by ``U_i,i:``. A given ``mask`` is
    used as is; otherwise the weights with the smallest ``w^2 / U_ii^2`` of each block are pruned.
    """
    w = w.copy()
    cols = w.shape[1]
    u = _inverse_cholesky(hessian) if u is None else u  # ``u``: the factor computed once per input
    keep = np.ones_like(w, dtype=bool) if mask is None else mask.copy()
    scale = zero = None
    for i1 in range(0, cols, BLOCK):
        i2 = min(i1 + BLOCK, cols)
        w1 = w[:, i1:i2].copy()
        err1 = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        d = np.diag(u1)
        if prune and mask is None and spec.n is None:
            score = w1**2 / d[None, :] ** 2
            k = int(score.size * spec.sparsity)
            block_keep = np.ones(score.size, dtype=bool)
            if k:
                block_keep[np.argsort(score.reshape(-1), kind="stable")[:k]] = False
            keep[:, i1:i2] = block_keep.reshape(score.shape)
        for j in range(i2 - i1):
            col = i1 + j
            if prune and mask is None and spec.n is not None and j % spec.m == 0:
                span = slice(j, min(j + spec.m, i2 - i1))
                keep[:, i1 + span.start:i1 + span.stop] = nm_mask(w1[:, span] ** 2 / d[None, span] ** 2, spec.n,
                                                                   spec.m)
            q = w1[:, j] * keep[:, col]
            if spec.bits:
                if col % spec.group_size == 0:
                    # the group's parameters from its current (error-updated) weights, as GPTQ does
                    upcoming = np.concatenate([w1[:, j:], w[:, i2:]], axis=1)[:, :spec.group_size]
                    scale, zero = group_params(upcoming, spec.bits)
                q = quantize(q, scale, zero, spec.bits) * keep[:, col]
            e = (w1[:, j] - q) / d[j]
            w1[:, j:] -= np.outer(e, u1[j, j:])
            w1[:, j] = q
            err1[:, j] = e
        w[:, i1:i2] = w1
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return CompressedLinear(w.astype(np.float32), keep if (prune or mask is not None) else None)


class OPTIMA(Method):
    """OPTIMA-style exact reconstruction: given a pruning mask (Wanda's), each output row's kept weights
    are the least-squares fit of the dense row's outputs, ``w_S = H_SS^-1 H_S: w`` (Boža, 'Fast and
    optimal weight update for pruned large language models' / OPTIMA's row-wise QP without constraints)."""

    key = "optima"
    source = ("OPTIMA: optimal one-shot pruning of LLMs via quadratic programming reconstruction (row-wise exact "
              "least squares of the kept weights given the mask)")

    def check(self, spec):
        super().check(spec)
        if not spec.prunes:
            raise InfersimError("method 'optima' reconstructs after pruning: give a sparsity")

    def _compress(self, w, calib, spec):
        mask = select_mask(np.abs(w) * calib.column_norms[None, :], spec, per_row=True)
        recon = reconstruct_rows(w, calib.hessian, mask)
        if spec.bits:
            recon = quantize_groups(recon, spec.bits, spec.group_size) * mask
        return CompressedLinear(recon.astype(np.float32), mask)


def reconstruct_rows(w: np.ndarray, hessian: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row ``r``: ``argmin_{v, v_j = 0 off the mask} (w_r - v) H (w_r - v)^T``, i.e. the kept weights
    solve ``H_SS v_S = H_S: w_r`` (the normal equations of ``||X w_r - X_S v_S||^2``), with 1% dampening."""
    h = hessian + DAMP * np.mean(np.diag(hessian)) * np.eye(len(hessian))
    out = np.zeros_like(w)
    target = w @ h  # (out, in): row r is H w_r (H is symmetric)
    counts = mask.sum(axis=1)
    for k in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == k)
        # rows keeping the same number of weights are solved as one stack (LAPACK per system, no Python
        # loop), in chunks of about 64 MiB of float64 systems
        step = max(1, int(2**23 // (k * k)))
        for start in range(0, len(rows), step):
            r = rows[start:start + step]
            s = np.stack([np.flatnonzero(mask[i]) for i in r])  # (chunk, k) kept columns per row
            systems = h[s[:, :, None], s[:, None, :]]
            rhs = np.take_along_axis(target[r], s, axis=1)
            block = np.zeros((len(r), w.shape[1]))
            np.put_along_axis(block, s, np.linalg.solve(systems, rhs[..., None])[..., 0], axis=1)
            out[r] = block
    return out


class SLiM(Method):
    """SLiM: quantize (per group), prune the quantized weights by Wanda's score, then fit low-rank
    adapters to the whole error weighted by activation saliency (Mozaffari et al., 'SLiM: one-shot
    quantization and sparsity with low-rank approximation for LLM weight compression', 2024)."""

    key = "slim"
    source = "Mozaffari et al., 'SLiM: one-shot quantized sparse plus low-rank approximation of LLMs', 2024"

    def _rank(self, spec, shape):
        return int(round((spec.lowrank or SLIM_DEFAULT_RANK) * min(shape)))

    def _compress(self, w, calib, spec):
        q = quantize_groups(w, spec.bits, spec.group_size) if spec.bits else w
        mask = select_mask(np.abs(q) * calib.column_norms[None, :], spec, per_row=True) if spec.prunes else None
        compressed = q * mask if mask is not None else q
        return CompressedLinear(compressed.astype(np.float32), mask)


METHODS: dict[str, type[Method]] = {m.key: m for m in (Magnitude, Wanda, SparseGPT, GPTQ, OPTIMA, SLiM)}


def get_method(key: str) -> Method:
    try:
        return METHODS[key]()
    except KeyError:
        raise unknown_name_error("compression method", key, METHODS) from None
