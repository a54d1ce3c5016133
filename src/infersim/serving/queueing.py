"""Waiting times of a deterministic-service FCFS queue, and the TTFT of a chunked-prefill server.

Pure, vectorized functions used by :mod:`infersim.serving.loaded`. Time is in units of the
queue's service time ``s`` where a name says ``u``; ``rho = lambda s``.

M/D/1 waiting time (Poisson arrivals, FCFS)
-------------------------------------------
* Mean (Pollaczek-Khinchine): ``W_q = rho s / (2 (1 - rho))``.
* Distribution on the first service interval, exact (Erlang 1909; e.g. Franx, "A simple solution
  for the M/D/c waiting time distribution", Oper. Res. Lett. 29, 2001, eq. for c = 1, k = 0 term):
  ``P(W <= u s) = (1 - rho) exp(rho u)`` for ``0 <= u < 1``, so ``P(W > s) = 1 - (1 - rho) e^rho``.
* Beyond one service time the exact series alternates and loses precision; the tail there is taken
  exponential (its asymptotic form, Cramer-Lundberg), ``P(W > u s) = A exp(-g (u - 1))`` with ``A``
  the exact value at ``u = 1`` and the decay ``g`` chosen so that the mean is Pollaczek-Khinchine's.
  "Two-piece M/D/1": exact on ``[0, s)``, exact mean, exponential tail.
* Arrivals that are not Poisson (each of ``n`` servers behind a round-robin router sees Erlang-``n``
  gaps, squared coefficient of variation ``c_a^2 = 1 / n``): the wait is scaled by ``c_a^2``, which
  keeps Kingman's / Allen-Cunneen's G/G/1 mean ``(c_a^2 + c_s^2) / 2 x rho s / (1 - rho)`` with
  ``c_s^2 = 0``.

TTFT of a chunked-prefill server (Sarathi-Serve's scheduler, what ``scheduler: chunked`` simulates)
---------------------------------------------------------------------------------------------------
Prompt tokens queue FCFS for the token budget the decodes leave; the queue drains ``T - B`` prompt
tokens per full-budget step, so the work ahead of an arriving prompt is an M/D/1 wait ``W`` with
``s`` = one prompt's tokens at that rate. A prompt's own prefill takes ``s_lo`` (its ``k - 1`` full
chunks then its short last chunk) or ``s_hi = s_lo + delta`` when its last chunk shares the step with
the next prompt's first chunk: that happens when another prompt arrived before the last step
starts, i.e. during the wait or the first ``k - 1`` steps (``a`` seconds): probability
``1 - exp(-lambda (a + W))`` given ``W`` for Poisson arrivals (FCFS: only later arrivals are behind
it); for other arrivals the gap survival ``S(a)`` (gamma gaps with the arrivals' SCV,
:func:`gap_survival`) replaces ``exp(-lambda a)``. A prompt that
does not wait also waits for the running decode step (``r``, half a step on average, uniform on
``[0, 2 r]``: ``U_2r`` below). Hence::

    P(TTFT <= x) = (1 - rho) [e0 U_2r(x - s_lo) + (1 - e0) U_2r(x - s_hi)]
                   + e^(-lambda a) H(x - s_lo) + (F(x - s_hi) - (1 - rho)) - e^(-lambda a) H(x - s_hi)

with ``e0 = S(r + a)``, ``S(a)`` in place of ``e^(-lambda a)``, ``F`` the wait's CDF and ``H(y) = int_(0+)^y e^(-lambda w) dF(w)``,
both closed-form for the two-piece M/D/1 (:func:`md1_wait_laplace_partial`).
"""

from __future__ import annotations

import math

import numpy as np

#: bisection steps for a quantile (the bracket shrinks 2^BISECTIONS-fold)
BISECTIONS = 16


def md1_mean_wait_s(rho, service_s, arrival_scv: float = 1.0) -> np.ndarray:
    """Mean wait of a deterministic-service queue: ``(c_a^2 / 2) rho s / (1 - rho)`` (inf at rho >= 1).

    With Poisson arrivals (``c_a^2 = 1``) this is Pollaczek-Khinchine's M/D/1 mean, exact; for other
    arrivals the Kingman / Allen-Cunneen G/G/1 approximation ``(c_a^2 + c_s^2) / 2 x rho s / (1 - rho)``
    with ``c_s^2 = 0``. A Poisson stream split round robin over ``n`` servers gives each server
    Erlang-``n`` gaps, ``c_a^2 = 1 / n`` (what the simulator's round-robin router does)."""
    rho = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho < 1.0, arrival_scv * rho * np.asarray(service_s) / (2.0 * (1.0 - rho)), np.inf)


def md1_wait_quantile_s(rho, service_s, q: float, arrival_scv: float = 1.0) -> np.ndarray:
    """Quantile ``q`` of the waiting time of a batch-service prefill pool: 0 with probability
    ``1 - rho``, else exponential with mean ``W_q / rho`` (Kingman's heavy-traffic exponential form,
    Kingman 1962, "On queues in heavy traffic", JRSS B 24), ``W_q`` from :func:`md1_mean_wait_s`."""
    rho = np.asarray(rho, dtype=np.float64)
    s = np.asarray(service_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond_mean = arrival_scv * s / (2.0 * (1.0 - rho))  # W_q / rho
        tail = cond_mean * np.log(np.maximum(rho / (1.0 - q), 1.0))
    return np.where(rho < 1.0, tail, np.inf)


def md1_tail(rho) -> tuple[np.ndarray, np.ndarray]:
    """``(A, g)`` of the two-piece M/D/1 wait: ``A = P(W > s) = 1 - (1 - rho) e^rho`` (exact) and the
    decay ``g`` (per service time) of ``P(W > u s) = A e^(-g (u - 1))`` that makes the mean
    ``rho / (2 (1 - rho))`` service times (Pollaczek-Khinchine)."""
    rho = np.clip(np.asarray(rho, dtype=np.float64), 0.0, 1.0 - 1e-12)
    a = -np.expm1(rho) + rho * np.exp(rho)  # 1 - (1 - rho) e^rho without cancellation at small rho
    # mean of the wait beyond u = 1: PK mean minus int_0^1 P(W > u) du = 1 - (1 - rho)(e^rho - 1) / rho
    with np.errstate(divide="ignore", invalid="ignore"):
        first = 1.0 - (1.0 - rho) * np.where(rho > 0, np.expm1(rho) / np.where(rho > 0, rho, 1.0), 1.0)
        beyond = rho / (2.0 * (1.0 - rho)) - first
        g = np.where(rho > 1e-3, a / beyond, 3.0)  # small rho: A ~ rho^2 / 2, beyond ~ rho^2 / 6
    return a, g


def md1_wait_cdf(rho, u) -> np.ndarray:
    """``P(W <= u s)`` of the two-piece M/D/1 wait (0 for ``u < 0``)."""
    rho = np.asarray(rho, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    a, g = md1_tail(rho)
    first = (1.0 - rho) * np.exp(rho * np.clip(u, 0.0, 1.0))
    tail = 1.0 - a * np.exp(-g * np.maximum(u - 1.0, 0.0))
    return np.where(u < 0, 0.0, np.where(u < 1.0, first, tail))


def md1_wait_laplace_partial(rho, u, beta=None) -> np.ndarray:
    """``H(u) = int_(0+)^u exp(-beta v) dF(v)`` (``v`` in service times): the wait's distribution on
    ``(0, u]`` weighted by the probability ``exp(-beta v)`` that no Poisson arrival comes during it
    (``beta`` = arrivals per service time, ``rho`` by default). On ``u < 1`` the density is
    ``rho (1 - rho) e^(rho u)``, beyond it ``A g e^(-g (u - 1))`` (:func:`md1_tail`); both integrate in
    closed form."""
    rho = np.asarray(rho, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    beta = rho if beta is None else np.asarray(beta, dtype=np.float64)
    a, g = md1_tail(rho)
    z = rho - beta

    def first(v):  # rho (1 - rho) int_0^v e^(z t) dt
        zv = z * v
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = np.where(np.abs(zv) > 1e-12, np.expm1(zv) / np.where(zv != 0, zv, 1.0), 1.0)
        return rho * (1.0 - rho) * v * phi

    k = beta + g
    beyond = a * g * np.exp(-beta) * -np.expm1(-k * np.maximum(u - 1.0, 0.0)) / k
    return np.where(u <= 0, 0.0, np.where(u < 1.0, first(np.clip(u, 0.0, 1.0)), first(1.0) + beyond))


def welch_queue(rho, rate, service_s, first_service_s) -> tuple[np.ndarray, np.ndarray]:
    """The wait of an M/G/1 queue whose busy periods start with an exceptional service (Welch 1964,
    "On a generalized M/G/1 queuing process in which the first customer of each busy period receives
    exceptional service", Oper. Res. 12), both services deterministic: ``s`` regular, ``s0`` first.
    A Poisson arrival finds it empty with probability ``pi0 = (1 - rho) / (1 - rho + lambda s0)``
    (``rho = lambda s``), and the mean wait is ``lambda (pi0 s0^2 + (1 - pi0) s^2) / (2 (1 - rho))``
    (PASTA and the work balance ``E[V] = rho E[W] + lambda E[S^2] / 2``). Returned as the M/D/1
    ``(rho_e, s_e)`` with the same probability of waiting and the same mean."""
    rho, rate, s, s0 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (rho, rate, service_s,
                                                                                       first_service_s)))
    with np.errstate(divide="ignore", invalid="ignore"):
        pi0 = (1.0 - rho) / (1.0 - rho + rate * s0)
        mean = rate * (pi0 * s0 ** 2 + (1.0 - pi0) * s ** 2) / (2.0 * (1.0 - rho))
        rho_e = 1.0 - pi0
        s_e = np.where(rho_e > 0, 2.0 * pi0 * mean / rho_e, s)
    return rho_e, s_e


def gap_survival(t, rate, scv) -> np.ndarray:
    """``P(gap > t)`` for arrival gaps of mean ``1 / rate`` and squared coefficient of variation ``scv``
    taken gamma-distributed (shape ``1 / scv``: exponential for Poisson arrivals, Erlang-``n`` for
    round robin over ``n`` servers): ``Q(k, k rate t)``, the regularized upper incomplete gamma
    function, by its power series ``P(k, x) = x^k e^(-x) / Gamma(k + 1) sum_n x^n / ((k+1)...(k+n))``."""
    t, rate, scv = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (t, rate, scv)))
    k = 1.0 / np.clip(scv, 1e-3, 1.0)
    x = np.maximum(k * rate * t, 0.0)
    x = np.where(np.isfinite(x), x, 0.0)
    poisson = np.abs(k - 1.0) < 1e-12
    out = np.exp(-x)
    # the gamma(k, 1) upper tail: past k + 10 sqrt(k) + 10 it is below 1e-9 (0 here); the series
    # runs on the rest only, until its terms stop counting
    series = ~poisson & (x < k + 10.0 * np.sqrt(k) + 10.0)
    out = np.where(poisson, out, 0.0)
    if series.any():
        ks, xs = k[series], x[series]
        lg = np.vectorize(math.lgamma, otypes=[float])(ks + 1.0)
        with np.errstate(divide="ignore", under="ignore"):
            log_pre = np.where(xs > 0, ks * np.log(np.where(xs > 0, xs, 1.0)) - xs - lg, -np.inf)
        term = np.ones_like(xs)
        total = np.ones_like(xs)
        for n in range(1, 400):
            term = term * xs / (ks + n)
            total += term
            if n % 16 == 0 and not (term > 1e-13 * total).any():
                break
        out[series] = 1.0 - np.minimum(np.exp(log_pre) * total, 1.0)
    return out


def _uniform_cdf(y, width):
    """``P(U <= y)`` for ``U`` uniform on ``[0, width]`` (a step at 0 where ``width`` is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(width > 0, np.clip(y / np.where(width > 0, width, 1.0), 0.0, 1.0), (y >= 0).astype(float))


def _no_arrival(rate, scv, residual_s, before_last_s):
    """``(e0, ea)``: the probability that the next arrival comes after the prompt's last step starts,
    for a prompt that did not wait (``r + a`` after its arrival) and the factor for one that waited
    (``a``; its wait then adds ``exp(-lambda w)``)."""
    return gap_survival(residual_s + before_last_s, rate, scv), gap_survival(before_last_s, rate, scv)


class ChunkedTTFT:
    """The TTFT distribution of chunked-prefill servers (the module docstring's mixture), one per
    element of the (broadcast) arguments; the per-server constants are computed once, so that many
    quantiles cost one lean CDF evaluation per bisection step. ``rho`` and ``queue_s`` are the
    prompt-token queue's (tokens at the rate of full-budget steps); a prompt that starts a busy period
    occupies the server for its own prefill ``s_lo`` instead (:func:`welch_queue`)."""

    def __init__(self, *, rho, rate, queue_s, scv, s_lo, s_hi, residual_s, before_last_s) -> None:
        rho, rate, queue_s, scv, s_lo, s_hi, residual_s, before_last_s = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.float64) for v in (rho, rate, queue_s, scv, s_lo, s_hi, residual_s,
                                                        before_last_s)))
        self.shape = rho.shape
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ok = (rho < 1.0) & (rho >= 0.0) & np.isfinite(rate) & np.isfinite(s_lo) & np.isfinite(s_hi)
            rho_e, q_e = welch_queue(np.where(ok, rho, 0.5), np.where(ok, rate, 1.0), queue_s, s_lo)
            ok &= np.isfinite(q_e) & (rho_e < 1.0)
        self.ok = ok
        take = (lambda v: np.asarray(v)[ok])
        rho_e, q_e, rate, scv = take(rho_e), take(q_e), take(rate), take(scv)
        self.s_lo, self.s_hi, self.r = take(s_lo), take(s_hi), take(residual_s)
        self.rho = np.clip(rho_e, 0.0, 1.0 - 1e-12)
        self.idle = 1.0 - self.rho
        self.a, self.g = md1_tail(self.rho)
        self.e0, self.ea = _no_arrival(rate, scv, self.r, take(before_last_s))
        self.scale = np.maximum(scv * q_e, 1e-300)  # the wait's unit (its service time, scaled by the SCV)
        beta = rate * self.scale  # arrivals per unit of the wait
        # z = rho - beta; at |z| -> 0, expm1(z u) / z -> u: a tiny z keeps that limit within 1e-9
        self.z = np.where(np.abs(self.rho - beta) < 1e-9, 1e-9, self.rho - beta)
        self.inv_z = 1.0 / self.z
        self.rho_idle = self.rho * self.idle
        self.k = beta + self.g
        self.k_coef = self.a * self.g * np.exp(-beta) / self.k
        self.width = np.maximum(2.0 * self.r, 1e-12)  # the running step's residual, uniform on [0, 2 r]
        self.inv_width = 1.0 / self.width
        self.inv_scale = 1.0 / self.scale

    def _f_waited(self, u):
        """``P(0 < W <= u)`` of the two-piece M/D/1 (:func:`md1_wait_cdf` less its atom; 0 for ``u <= 0``):
        the first-interval part ``(1 - rho)(e^(rho u) - 1)`` up to ``u = 1``, plus the tail's mass
        ``A (1 - e^(-g (u - 1)))`` beyond it (each term vanishes on the other's side: no branches)."""
        return (self.idle * np.expm1(self.rho * np.clip(u, 0.0, 1.0))
                - self.a * np.expm1(-self.g * np.maximum(u - 1.0, 0.0)))

    def _h(self, u):
        """:func:`md1_wait_laplace_partial` (0 for ``u <= 0``), branch-free like :meth:`_f_waited`."""
        return (self.rho_idle * np.expm1(self.z * np.clip(u, 0.0, 1.0)) * self.inv_z
                - self.k_coef * np.expm1(-self.k * np.maximum(u - 1.0, 0.0)))

    def cdf(self, x) -> np.ndarray:
        """``P(TTFT <= x)`` (``x`` shaped like the valid servers, or broadcasting against them)."""
        lo, hi = x - self.s_lo, x - self.s_hi
        atoms = self.idle * (self.e0 * np.clip(lo * self.inv_width, 0.0, 1.0)
                             + (1.0 - self.e0) * np.clip(hi * self.inv_width, 0.0, 1.0))
        u_lo, u_hi = lo * self.inv_scale, hi * self.inv_scale
        return atoms + self.ea * (self._h(u_lo) - self._h(u_hi)) + self._f_waited(u_hi)

    def _out(self, values: np.ndarray) -> np.ndarray:
        out = np.full(self.shape, np.inf)
        out[self.ok] = values
        return out

    def mean(self) -> np.ndarray:
        delta = self.s_hi - self.s_lo
        h_inf = self._h(np.inf)
        value = (self.idle * (self.r + self.s_lo + (1.0 - self.e0) * delta) + self.rho * self.s_lo
                 + self.scale * self.rho / (2.0 * self.idle) + delta * (self.rho - self.ea * h_inf))
        return self._out(value)

    def quantile(self, q: float) -> np.ndarray:
        """Quantile ``q`` (inf where the queue is unstable)."""
        return self.quantiles([q])[q]

    def quantiles(self, qs) -> dict:
        """``{q: quantile}`` for every ``q`` in ``qs``: one bisection on :meth:`cdf` for all of them."""
        qs = list(qs)
        if not qs:
            return {}
        col = np.asarray(qs, dtype=np.float64)[:, None]
        u_q = 1.0 + np.maximum(np.log(np.maximum(self.a, 1e-300) / (1.0 - col)) / self.g, 0.0)
        lo = np.broadcast_to(self.s_lo - 1e-12, u_q.shape)
        hi = self.width + self.s_hi + self.scale * u_q + 1e-12
        lo = lo.copy()
        for _ in range(BISECTIONS):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < col
            np.copyto(lo, mid, where=below)
            np.copyto(hi, mid, where=~below)
        return {q: self._out(hi[j]) for j, q in enumerate(qs)}


def chunked_ttft_cdf(x, **kw) -> np.ndarray:
    """``P(TTFT <= x)`` of a chunked-prefill server (:class:`ChunkedTTFT`; NaN where unstable)."""
    shape = np.broadcast_shapes(np.shape(x), *(np.shape(v) for v in kw.values()))
    dist = ChunkedTTFT(**{k: np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for k, v in kw.items()})
    out = np.full(dist.shape, np.nan)
    out[dist.ok] = dist.cdf(np.broadcast_to(np.asarray(x, dtype=np.float64), dist.shape)[dist.ok])
    return out


def chunked_ttft_s(q: float | None, **kw) -> np.ndarray:
    """TTFT of a chunked-prefill server: its mean (``q=None``) or quantile ``q``; inf where
    ``rho >= 1`` (:class:`ChunkedTTFT`)."""
    dist = ChunkedTTFT(**kw)
    return dist.mean() if q is None else dist.quantile(q)


def erlang_c(servers, offered) -> np.ndarray:
    """Erlang's C formula: the probability that an arrival to an M/M/c queue waits, ``c = servers``,
    offered load ``a = lambda s`` (Erlang B by its recursion ``B_k = a B_(k-1) / (k + a B_(k-1))``,
    then ``C = B / (1 - (a / c)(1 - B))``); 1 where ``a >= c``."""
    c, a = np.broadcast_arrays(np.asarray(servers, dtype=np.int64), np.asarray(offered, dtype=np.float64))
    b = np.ones(a.shape)
    for k in range(1, int(c.max(initial=1)) + 1):
        b = np.where(k <= c, a * b / (k + a * b), b)
    rho = a / c
    with np.errstate(divide="ignore", invalid="ignore"):
        out = b / (1.0 - rho * (1.0 - b))
    return np.where(rho < 1.0, out, 1.0)


def pooled_prefill_ttft_s(q: float | None, *, rho, rate, queue_s, service_s, servers, shared_extra_s=0.0
                          ) -> np.ndarray:
    """TTFT of a prefill pool of ``servers`` servers behind a least-outstanding router (join the
    shortest queue). Per server, ``rho`` and ``queue_s`` are the prompt-token queue's (prompts batched
    into full-budget steps) and ``service_s`` a prompt's own step (the exceptional first service of a
    busy period, :func:`welch_queue`, giving the M/D/1 ``(rho_e, s_e)``).

    * The probability of waiting: Erlang's C, ``c`` servers at ``a = c rho_e`` (every server busy).
    * The wait given a wait: exponential (Kingman's heavy-traffic form) with mean
      ``m = s_e / 2 + s_e rho_e / (2 c (1 - rho_e))``: the M/D/c central queue's Allen-Cunneen mean
      ``s_e / (2 c (1 - rho_e))`` (half M/M/c's, ``c_s^2 = 0``), whose first term ``s_e / (2 c)`` is the
      wait for the first of ``c`` busy servers, with that term replaced by the residual of the one
      server the request joined (``s_e / 2``: it cannot move to another). For ``c = 1`` this is the
      M/D/1 mean ``s_e / (2 (1 - rho_e))`` given a wait.
    * A prompt that waited ``w`` shares its step with the prompts that reached its server meanwhile
      (continuous batching): ``+ shared_extra_s`` with probability ``1 - exp(-j w)``. They join it
      at ``j = lambda C^(c - 1)`` (every other server as loaded, each with the probability of
      waiting: a mean-field approximation; ``j = lambda`` for one server). TTFT = ``service_s +
      g(W)``, ``g(w) = w + shared_extra_s (1 - exp(-j w))`` increasing, so its quantiles are ``g``
      of the wait's; its mean adds ``C shared_extra_s j m / (1 + j m)``."""
    rho, rate, queue_s, service_s, servers, extra = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (rho, rate, queue_s, service_s, servers, shared_extra_s)))
    ok = (rho < 1.0) & (rho >= 0.0)
    rho_e, s_e = welch_queue(np.where(ok, rho, 0.5), rate, queue_s, service_s)
    ok &= rho_e < 1.0
    rho_e = np.where(ok, rho_e, 0.5)
    c = np.maximum(servers, 1.0)
    waits = erlang_c(c, c * rho_e)
    m = 0.5 * s_e * (1.0 + rho_e / (c * (1.0 - rho_e)))
    # arrivals join the waiting prompt's server only when every other server is as loaded (each with
    # the probability of waiting, independently: a mean-field approximation; all of them when c = 1)
    joins = rate * waits ** (c - 1.0)
    if q is None:
        value = service_s + waits * (m + extra * joins * m / (1.0 + joins * m))
    else:
        w = m * np.log(np.maximum(waits / (1.0 - q), 1.0))
        value = service_s + w + extra * -np.expm1(-joins * w)
    return np.where(ok, value, np.inf)
