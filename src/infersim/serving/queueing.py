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
``1 - exp(-lambda (a + W))`` given ``W`` (FCFS: only later arrivals are behind it). A prompt that
does not wait also waits for the running decode step (``r``, half a step on average). Hence::

    P(TTFT <= x) = (1 - rho) [e0 1{x >= r + s_lo} + (1 - e0) 1{x >= r + s_hi}]
                   + e^(-lambda a) H(x - s_lo) + (F(x - s_hi) - (1 - rho)) - e^(-lambda a) H(x - s_hi)

with ``e0 = exp(-lambda (r + a))``, ``F`` the wait's CDF and ``H(y) = int_(0+)^y e^(-lambda w) dF(w)``,
both closed-form for the two-piece M/D/1 (:func:`md1_wait_laplace_partial`).
"""

from __future__ import annotations

import numpy as np

#: bisection steps for a quantile (the bracket shrinks 2^BISECTIONS-fold)
BISECTIONS = 24


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


def chunked_ttft_cdf(x, *, rho, rate, queue_s, scv, s_lo, s_hi, residual_s, before_last_s) -> np.ndarray:
    """``P(TTFT <= x)`` of a chunked-prefill server (the module docstring's mixture) with the queue's
    M/D/1 ``(rho, queue_s)`` (from :func:`welch_queue`)."""
    lam = np.asarray(rate, dtype=np.float64)
    e0 = np.exp(-lam * (residual_s + before_last_s))
    ea = np.exp(-lam * before_last_s)
    scale = scv * queue_s
    beta = lam * scale  # arrivals per unit of the scaled wait
    with np.errstate(divide="ignore", invalid="ignore"):
        u_lo = np.where(scale > 0, (x - s_lo) / scale, np.where(x >= s_lo, np.inf, -1.0))
        u_hi = np.where(scale > 0, (x - s_hi) / scale, np.where(x >= s_hi, np.inf, -1.0))
    idle = 1.0 - rho
    atoms = idle * (e0 * (x >= residual_s + s_lo) + (1.0 - e0) * (x >= residual_s + s_hi))
    waited = (ea * md1_wait_laplace_partial(rho, u_lo, beta) + (md1_wait_cdf(rho, u_hi) - idle) * (u_hi >= 0)
              - ea * md1_wait_laplace_partial(rho, u_hi, beta))
    return atoms + waited


def chunked_ttft_s(q: float | None, *, rho, rate, queue_s, scv, s_lo, s_hi, residual_s, before_last_s):
    """TTFT of a chunked-prefill server: its mean (``q=None``) or quantile ``q`` (bisection on
    :func:`chunked_ttft_cdf`); inf where ``rho >= 1``. ``rho`` and ``queue_s`` are the prompt-token
    queue's (tokens at the rate of full-budget steps); a prompt that starts a busy period occupies the
    server for its own prefill ``s_lo`` instead (:func:`welch_queue`). All arguments broadcast."""
    rho, rate, queue_s, scv, s_lo, s_hi, residual_s, before_last_s = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (rho, rate, queue_s, scv, s_lo, s_hi, residual_s,
                                                    before_last_s)))
    ok = (rho < 1.0) & (rho >= 0.0)
    rho, queue_s = welch_queue(np.where(ok, rho, 0.5), rate, queue_s, s_lo)
    ok &= np.isfinite(queue_s)
    rho = np.where(ok, np.clip(rho, 0.0, 1.0 - 1e-12), 0.5)
    queue_s = np.where(ok, queue_s, 1.0)
    a, g = md1_tail(rho)
    delta = s_hi - s_lo
    if q is None:
        e0 = np.exp(-rate * (residual_s + before_last_s))
        ea = np.exp(-rate * before_last_s)
        h_inf = md1_wait_laplace_partial(rho, np.inf, rate * scv * queue_s)
        mean = ((1.0 - rho) * (residual_s + s_lo + (1.0 - e0) * delta) + rho * s_lo
                + scv * queue_s * rho / (2.0 * (1.0 - rho)) + delta * (rho - ea * h_inf))
        return np.where(ok, mean, np.inf)
    kw = dict(rho=rho, rate=rate, queue_s=queue_s, scv=scv, s_lo=s_lo, s_hi=s_hi, residual_s=residual_s,
              before_last_s=before_last_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_q = 1.0 + np.maximum(np.log(np.maximum(a, 1e-300) / (1.0 - q)) / g, 0.0)
    lo = np.minimum(s_lo, residual_s + s_lo)
    hi = residual_s + s_hi + scv * queue_s * u_q + 1e-12
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = chunked_ttft_cdf(mid, **kw) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.where(ok, hi, np.inf)
