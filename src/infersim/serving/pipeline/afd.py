"""Attention-FFN disaggregation (AFD): the step time and the memory of one AFD decode instance.

An instance of a MoE model puts attention (with the KV cache) on ``attention.gpus`` GPUs and the
routed experts on ``ffn.gpus`` GPUs (MegaScale-Infer, Zhu et al. 2025; Step-3's AFD, StepFun 2025).
The attention side is ``attention.gpus / attention.tp`` data-parallel ranks, each holding its own
requests; the experts are split ``ffn.gpus`` ways (expert parallel). Per MoE layer every
micro-batch goes attention -> dispatch (all-to-all to the FFN group) -> experts -> combine (back),
and ``micro_batches`` micro-batches ping-pong between the groups
(:func:`~infersim.perf.disagg.afd_layer_time_s`).

What runs where (this project's choices, stated because the papers differ in details):

* attention side: attention, the projections and norms of every layer, the router, the shared
  experts, the dense MLPs of the leading dense layers, the embedding and the LM head;
* FFN side: the routed experts (``moe.experts.*`` rows of the operator graph);
* the dense leading layers, the embedding and the LM head run before / after the MoE-layer
  pipeline, serially for each micro-batch.

Step time of a decode step of ``b`` sequences with ``x`` decode pairs:
each rank holds ``ceil(b / ranks)`` sequences, split into micro-batches of ``b_mb = ceil(. / m)``;
a micro-batch's attention time per layer comes from :class:`~infersim.perf.step_time.StepTimeModel`
on the attention layout (the whole step of ``b_mb`` sequences minus the rows that are not
per-layer attention work, which do not depend on the contexts and are tabulated once per batch
size by costing the operator graph), its expert time from the operator graph on the FFN layout
for the ``b_mb x ranks`` tokens a micro-batch sends, and its dispatch + combine time from
:func:`~infersim.perf.disagg.afd_dispatch_bytes` over the link, a pairwise exchange between the
two groups (:meth:`AFDStepTimeModel.comm_time_s`: one latency per direction, or one per peer). Stage times are those of a
micro-batch, not ``1/m`` of the batch's, so the weights an expert GEMM reads again for every
micro-batch are paid. The micro-batches are carried across layers without draining
(MegaScale-Infer's ping-pong, :func:`~infersim.perf.disagg.afd_layer_time_s`).

Prefill chunks (only after a preemption by recompute) run on one rank without micro-batching.
The time is convex and piecewise linear in the decode pairs for a fixed batch, so the simulator's
:class:`~infersim.serving.cost.StepCost` runs decode steps from its piecewise-linear form, checked
against :meth:`AFDStepTimeModel.step_time_s` as for any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...dtypes import bytes_per_element
from ...errors import InfersimError
from ...hardware.device import Device
from ...models.config import ModelConfig
from ...perf.disagg import afd_dispatch_bytes, afd_layer_time_s
from ...perf.estimate import step_costs
from ...perf.graph import GraphOptions
from ...perf.memory import activation_peak_bytes, weight_bytes_per_device
from ...perf.parallel import Parallelism, Precision
from ...perf.shape import AttentionLoad, StepShape
from ...perf.step_time import StepTimeModel

EXPERT_ROWS = ("moe.experts",)
HEAD_ROWS = ("embedding", "final_norm", "lm_head", "allgather.logits", "sendrecv.pipeline")
DENSE_ROWS = ("mlp.",)
MOE_SIDE_ROWS = ("moe.router", "moe.shared", "moe.combine", "alltoall.")
_CATEGORIES = ("experts", "head", "dense", "moe_side")


def row_category(name: str) -> str:
    """Which part of an AFD instance runs an operator row (see module docstring)."""
    if name.startswith(EXPERT_ROWS):
        return "experts"
    if name in HEAD_ROWS:
        return "head"
    if name.startswith(DENSE_ROWS):
        return "dense"
    if name.startswith(MOE_SIDE_ROWS):
        return "moe_side"
    return "common"  # per-layer attention work: attention kernels, projections, norms, all-reduces


@dataclass(frozen=True)
class AFDLayout:
    attention_gpus: int
    attention_tp: int
    ffn_gpus: int
    micro_batches: int

    @property
    def ranks(self) -> int:
        return self.attention_gpus // self.attention_tp

    @property
    def gpus(self) -> int:
        return self.attention_gpus + self.ffn_gpus


def check_layout(model: ModelConfig, layout: AFDLayout) -> None:
    """Raises InfersimError (a message naming the knob) when the layout cannot hold the model."""
    if not model.is_moe:
        raise InfersimError(f"attention-FFN disaggregation needs a MoE model; {model.name} is dense")
    if model.layer_windows:
        raise InfersimError(f"AFD engines support full-attention models only; {model.name} has sliding windows")
    if layout.attention_gpus % layout.attention_tp:
        raise InfersimError(f"attention.gpus ({layout.attention_gpus}) must be a multiple of attention.tp "
                            f"({layout.attention_tp})")
    Parallelism(tp=layout.attention_tp).validate(model)
    if model.num_experts % layout.ffn_gpus:
        raise InfersimError(f"ffn.gpus ({layout.ffn_gpus}) must divide the {model.num_experts} routed experts "
                            f"of {model.name}")


class AFDStepTimeModel:
    """Step time and work of one AFD instance, with the interface of
    :class:`~infersim.perf.step_time.StepTimeModel` that :class:`~infersim.serving.cost.StepCost` uses."""

    def __init__(self, model: ModelConfig, attention_device: Device, ffn_device: Device, layout: AFDLayout,
                 prec: Precision, link_bandwidth_bytes_per_s: float, link_latency_s: float,
                 options: GraphOptions = GraphOptions(), comm: str = "m2n") -> None:
        check_layout(model, layout)
        self.comm = comm
        self.model, self.layout, self.prec, self.options = model, layout, prec, options
        self.attention_device, self.ffn_device = attention_device, ffn_device
        self.attn_par = Parallelism(tp=layout.attention_tp)
        # experts split ffn_gpus ways, each expert whole on its device (only the expert rows are used)
        self.ffn_par = Parallelism(tp=layout.ffn_gpus, ep=layout.ffn_gpus)
        self.attn = StepTimeModel(model, attention_device, self.attn_par, prec, options)
        self.windows = self.attn.windows
        self.link_bandwidth_bytes_per_s = link_bandwidth_bytes_per_s
        self.link_latency_s = link_latency_s
        groups = model.layer_groups()
        self.layers = model.num_layers
        self.moe_layers = sum(g.count for g in groups if g.ffn == "moe")
        self.dense_layers = self.layers - self.moe_layers
        self._side = np.zeros((len(_CATEGORIES), 0))  # per sequences in a micro-batch (attention layout)
        self._experts = np.zeros(0)  # routed-expert rows of all MoE layers per token count (FFN layout)

    # ----- tables (costed once, vectorized) ------------------------------------------------------
    def _decode_shape(self, n: int) -> StepShape:
        return StepShape.uniform(self.model, decode_seqs=np.arange(n, dtype=np.float64), decode_context=1)

    def _sums(self, par: Parallelism, device: Device, shape: StepShape) -> dict[str, np.ndarray]:
        """Per category: (time, flops, bytes) summed over its rows, each an array over scenarios."""
        table, costs = step_costs(self.model, device, par, self.prec, shape, self.options)
        cats = np.array([row_category(n) for n in table.names])
        count = table.count[:, None]
        out = {}
        for cat in _CATEGORIES + ("common",):
            m = cats == cat
            out[cat] = np.stack([costs.total_time_s[m].sum(axis=0), (table.flops[m] * count[m]).sum(axis=0),
                                 (table.total_bytes[m] * count[m]).sum(axis=0)])
        return out

    def _side_row(self, b: int) -> np.ndarray:
        if b >= self._side.shape[1]:
            n = max(b + 1, 2 * self._side.shape[1], 64)
            sums = self._sums(self.attn_par, self.attention_device, self._decode_shape(n))
            self._side = np.stack([sums[c][0] for c in _CATEGORIES])
        return self._side[:, b]

    def _expert_time(self, tokens: int) -> float:
        if tokens >= self._experts.size:
            n = max(tokens + 1, 2 * self._experts.size, 256)
            self._experts = self._sums(self.ffn_par, self.ffn_device, self._decode_shape(n))["experts"][0]
        return float(self._experts[tokens])

    def comm_time_s(self, tokens: float) -> float:
        """Dispatch + combine of one micro-batch of ``tokens`` tokens, one MoE layer.

        ``m2n`` (default): every GPU posts all its sends at once (MegaScale-Infer's M2N library, Zhu
        et al. 2025, section 5, built to avoid per-peer costs), so a direction costs one link latency
        plus the busiest side's share of the bytes over its link. ``pairwise``: the pairwise-exchange
        alpha-beta model of :mod:`infersim.perf.collectives` (Thakur et al. 2005) on the bipartite
        group, one latency per peer, which is how the colocated all-to-all is costed."""
        if tokens <= 0:
            return 0.0
        one_way = float(afd_dispatch_bytes(tokens, self.model.num_experts_per_token, self.model.hidden_size,
                                           self.prec.activation))
        a, f = self.layout.attention_gpus, self.layout.ffn_gpus
        bw, lat = self.link_bandwidth_bytes_per_s, self.link_latency_s
        if self.comm == "pairwise":
            return 2.0 * max(f * lat + one_way / (a * bw), a * lat + one_way / (f * bw))
        return 2.0 * (lat + one_way / (min(a, f) * bw))

    # ----- step time -----------------------------------------------------------------------------
    def decode_parts(self, batch: int, decode_pairs: float) -> dict[str, float]:
        """The pieces of a decode step: per-micro-batch stage times of one MoE layer (attention,
        experts, comm), the micro-batch count and the serial part (dense layers, embedding, head)."""
        layout = self.layout
        b_rank = -(-batch // layout.ranks)
        b_mb = -(-b_rank // layout.micro_batches)
        m = -(-b_rank // b_mb)
        x_mb = decode_pairs * b_mb / batch
        full = self.attn.step_time_s(0, 0, b_mb, {w: (0.0, 0.0, 0.0, x_mb) for w in self.windows})
        experts_here, head, dense, side = (float(v) for v in self._side_row(b_mb))
        common = full - experts_here - head - dense - side  # per-layer attention work, all layers
        tokens = min(batch, b_mb * layout.ranks)  # what one micro-batch sends to the experts
        moe = max(self.moe_layers, 1)
        return {"attention_s": common / self.layers + side / moe, "experts_s": self._expert_time(tokens) / moe,
                "comm_s": self.comm_time_s(tokens), "micro_batches": m,
                "serial_s": common * self.dense_layers / self.layers + dense + head}

    def _decode_time(self, batch: int, decode_pairs: float) -> float:
        p = self.decode_parts(batch, decode_pairs)
        m = p["micro_batches"]
        moe = float(afd_layer_time_s(p["attention_s"], p["experts_s"], p["comm_s"], m, self.moe_layers))
        return m * p["serial_s"] + moe

    def _mixed_shape(self, prefill_tokens, prefill_seqs, b_rank, loads, scale) -> StepShape:
        att = {w: AttentionLoad(np.array([p]), np.array([r]), np.array([k]), np.array([d * scale]))
               for w, (p, r, k, d) in loads.items()}
        return StepShape(np.array([float(prefill_tokens)]), np.array([float(prefill_seqs)]),
                         np.array([float(b_rank)]), att)

    def _mixed(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int, loads: dict):
        """Category sums of a step with prefill chunks: the chunks and a rank's share of the decodes
        on one attention rank, all the step's tokens on the experts (no micro-batching)."""
        b_rank = -(-decode_seqs // self.layout.ranks) if decode_seqs else 0
        scale = b_rank / decode_seqs if decode_seqs else 0.0
        attn = self._sums(self.attn_par, self.attention_device,
                          self._mixed_shape(prefill_tokens, prefill_seqs, b_rank, loads, scale))
        tokens = prefill_tokens + decode_seqs
        return attn, self._expert_sums(tokens), tokens

    def _expert_sums(self, tokens: float) -> dict[str, np.ndarray]:
        """Category sums on the FFN layout for ``tokens`` tokens (only ``experts`` runs there)."""
        return self._sums(self.ffn_par, self.ffn_device,
                          StepShape.uniform(self.model, decode_seqs=float(tokens), decode_context=1))

    def step_time_s(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int, loads: dict) -> float:
        if prefill_tokens + decode_seqs == 0:
            return 0.0
        if prefill_tokens == 0:
            return self._decode_time(int(decode_seqs), float(sum(v[3] for v in loads.values())))
        attn, ffn, tokens = self._mixed(prefill_tokens, prefill_seqs, decode_seqs, loads)
        moe = max(self.moe_layers, 1)
        a = float(attn["common"][0, 0]) / self.layers + float(attn["moe_side"][0, 0]) / moe
        f = float(ffn["experts"][0, 0]) / moe
        serial = (float(attn["common"][0, 0]) * self.dense_layers / self.layers + float(attn["dense"][0, 0])
                  + float(attn["head"][0, 0]))
        return serial + float(afd_layer_time_s(a, f, self.comm_time_s(tokens), 1, self.moe_layers))

    def step_work(self, prefill_tokens: int, prefill_seqs: int, decode_seqs: int, loads: dict
                  ) -> tuple[float, float]:
        """(FLOPs, bytes) per GPU of the instance, averaged over its attention and FFN GPUs. Work is
        counted with the decodes spread evenly over the ranks (the chunks on one of them), so it is
        linear in the attention loads as :class:`~infersim.serving.cost.StepCost` expects."""
        layout = self.layout
        share = decode_seqs / layout.ranks
        busy = self._sums(self.attn_par, self.attention_device,
                          self._mixed_shape(prefill_tokens, prefill_seqs, share, loads, 1.0 / layout.ranks))
        other = self._sums(self.attn_par, self.attention_device,
                           self._mixed_shape(0, 0, share, {w: (0.0, 0.0, 0.0, v[3]) for w, v in loads.items()},
                                             1.0 / layout.ranks)) if layout.ranks > 1 else None
        ffn = self._expert_sums(prefill_tokens + decode_seqs)
        out = []
        for k in (1, 2):
            rank_work = [sum(float(part[c][k, 0]) for c in ("common", "head", "dense", "moe_side"))
                         for part in ((busy, other) if other is not None else (busy,))]
            attention = (rank_work[0] + (layout.ranks - 1) * (rank_work[1] if other is not None else 0.0)) \
                * layout.attention_tp
            out.append((attention + float(ffn["experts"][k, 0]) * layout.ffn_gpus) / layout.gpus)
        return out[0], out[1]

    def loads_for(self, chunks, pasts, decode_contexts):
        return self.attn.loads_for(chunks, pasts, decode_contexts)

    def kv_bytes_per_token(self) -> float:
        """KV bytes a token adds on one attention GPU."""
        return self.attn.kv_bytes_per_token()


@dataclass(frozen=True)
class AFDMemory:
    """Per-GPU memory of an AFD instance (bytes)."""

    attention_usable: float
    attention_weights: float
    attention_activations: float
    ffn_usable: float
    ffn_experts: float
    ffn_activations: float

    @property
    def attention_kv_capacity(self) -> float:
        return self.attention_usable - self.attention_weights - self.attention_activations

    @property
    def ffn_headroom(self) -> float:
        return self.ffn_usable - self.ffn_experts - self.ffn_activations


def afd_memory(model: ModelConfig, attention_device: Device, ffn_device: Device, layout: AFDLayout,
               prec: Precision, token_budget: int, max_num_seqs: int, memory_utilization: float) -> AFDMemory:
    """What each attention GPU and each FFN GPU holds: attention GPUs every weight but the routed
    experts (with their TP split), plus activations and the KV cache; FFN GPUs ``1/ffn_gpus`` of the
    routed experts plus the activations of the tokens they receive."""
    attn_par = Parallelism(tp=layout.attention_tp)
    w = weight_bytes_per_device(model, attn_par, prec)
    step_tokens = min(token_budget, max_num_seqs)
    act = float(activation_peak_bytes(model, attn_par, prec, step_tokens, step_tokens))
    experts = weight_bytes_per_device(model, Parallelism(tp=layout.ffn_gpus, ep=layout.ffn_gpus), prec).experts
    ab = bytes_per_element(prec.activation)
    mats = 3 if model.gated_mlp else 2
    # the expert GEMMs' inputs and intermediates for every token of a step, spread over the FFN GPUs
    tokens = float(max_num_seqs)
    ffn_act = tokens * model.num_experts_per_token * (mats * model.moe_intermediate_size + model.hidden_size) \
        * ab / layout.ffn_gpus
    return AFDMemory(attention_device.memory_bytes * memory_utilization, w.total - w.experts, act,
                     ffn_device.memory_bytes * memory_utilization, experts, ffn_act)


def gib(x: float) -> str:
    return f"{x / 1e9:.1f} GB"


def check_memory(mem: AFDMemory, layout: AFDLayout, model: ModelConfig) -> None:
    if mem.ffn_headroom < 0:
        raise InfersimError(f"the routed experts of {model.name} need {gib(mem.ffn_experts)} per FFN GPU on "
                            f"{layout.ffn_gpus} GPUs (+{gib(mem.ffn_activations)} of activations), "
                            f"{gib(mem.ffn_usable)} usable; use more FFN GPUs or narrower weights")
    if mem.attention_kv_capacity <= 0:
        raise InfersimError(f"an attention GPU holds {gib(mem.attention_weights)} of weights and "
                            f"{gib(mem.attention_activations)} of activations, {gib(mem.attention_usable)} usable: "
                            "no room for the KV cache; raise attention.tp or use narrower weights")
