"""Parallel layout of one model replica and the dtypes it runs in."""

from __future__ import annotations

from dataclasses import dataclass

from ..dtypes import check_dtype
from ..errors import InfersimError
from ..models.config import ModelConfig


@dataclass(frozen=True)
class Parallelism:
    """How one replica is split over devices.

    ``tp``: tensor parallel (Megatron-LM, Shoeybi et al. 2019: column-parallel QKV/up,
    row-parallel O/down, one all-reduce after each); ``pp``: pipeline stages
    (layers split evenly); ``ep``: expert parallel inside the TP group, as in
    TensorRT-LLM's ``moe_tp x moe_ep = tp``: each expert's weights are split over
    ``tp/ep`` devices and the experts over ``ep`` groups; with tensor-parallel
    attention every device holds all tokens, so the MoE output is combined by the
    same all-reduce as a dense MLP. ``dp_attention``: the DeepSeek-V3 / SGLang
    layout (DeepSeek-AI, "DeepSeek-V3 Technical Report" 2024, section 3.4): attention
    (and dense layers) run data-parallel on the ``tp`` devices, each with its own
    requests and full attention weights, and the routed experts are split ``ep = tp``
    ways; tokens reach their experts by an all-to-all dispatch and return by an
    all-to-all combine. The group may span scale-up domains (wide EP, e.g. DP16 EP16 over two
    8-GPU nodes): attention needs no collective, and the all-to-alls go hierarchical over the
    scale-out link (:func:`~infersim.perf.collectives.collective_time_s`). Devices per replica =
    ``tp * pp``.
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp_attention: bool = False

    @property
    def devices(self) -> int:
        return self.tp * self.pp

    @property
    def moe_tp(self) -> int:
        return self.tp // self.ep

    @property
    def attention_tp(self) -> int:
        """Ways attention, dense MLPs, shared experts and the LM head are split (1 under DP attention)."""
        return 1 if self.dp_attention else self.tp

    def validate(self, model: ModelConfig) -> None:
        for name in ("tp", "pp", "ep"):
            if getattr(self, name) < 1:
                raise InfersimError(f"--{name} must be >= 1, got {getattr(self, name)}")
        # under DP attention every device runs whole attention heads: no head split to check
        if not self.dp_attention and model.num_attention_heads % self.tp:
            raise InfersimError(
                f"--tp {self.tp} does not divide the {model.num_attention_heads} attention heads of "
                f"{model.name}; choose a tp that divides {model.num_attention_heads}"
            )
        if (not self.dp_attention and self.tp > model.num_kv_heads and self.tp % model.num_kv_heads
                and model.attention != "mla"):
            raise InfersimError(
                f"--tp {self.tp} is neither a divisor nor a multiple of the {model.num_kv_heads} KV heads "
                f"of {model.name}"
            )
        if self.pp > model.num_layers:
            raise InfersimError(f"--pp {self.pp} exceeds the {model.num_layers} layers of {model.name}")
        if self.dp_attention and (not model.is_moe or self.ep != self.tp or self.tp < 2):
            raise InfersimError(
                f"--dp-attention needs a MoE model and --ep equal to --tp >= 2 (got tp={self.tp}, ep={self.ep}"
                f"{'' if model.is_moe else ', and ' + model.name + ' is dense'})"
            )
        if self.ep > 1:
            if not model.is_moe:
                raise InfersimError(f"--ep {self.ep} needs a MoE model; {model.name} is dense")
            if self.tp % self.ep:
                raise InfersimError(f"--ep {self.ep} must divide --tp {self.tp} (experts are split inside the TP group)")
            if model.num_experts % self.ep:
                raise InfersimError(
                    f"--ep {self.ep} does not divide the {model.num_experts} experts of {model.name}"
                )
        if model.is_moe and self.moe_tp > 1 and model.moe_intermediate_size % self.moe_tp:
            raise InfersimError(
                f"tp/ep = {self.moe_tp} does not divide the expert width {model.moe_intermediate_size} "
                f"of {model.name}"
            )


@dataclass(frozen=True)
class Precision:
    """Storage dtypes: weights (of linear layers), activations, KV cache.

    Matmuls run in the narrower of weight and activation dtype when both are
    'real' compute types (fp8 x fp8 -> fp8 tensor cores). Weight-only quantization
    (int4/fp4 weights with 16-bit activations, e.g. AWQ/GPTQ) reads fewer weight
    bytes but computes in the activation dtype after dequantization.
    """

    weight: str = "bf16"
    activation: str = "bf16"
    kv_cache: str = "bf16"

    def __post_init__(self) -> None:
        check_dtype(self.weight, "--weight-dtype")
        check_dtype(self.activation, "--act-dtype")
        check_dtype(self.kv_cache, "--kv-dtype")

    @property
    def gemm_compute(self) -> str:
        """dtype the linear layers' math runs in."""
        w, a = self.weight, self.activation
        if w == "fp8" and a in ("bf16", "fp16"):
            # FP8 weight quantization as deployed (TensorRT-LLM / vLLM FP8) quantizes
            # activations per token too and runs fp8 GEMMs.
            return "fp8"
        if w in ("fp4",) and a in ("bf16", "fp16", "fp8"):
            return "fp4"  # NVFP4 / MXFP4 W4A4 on Blackwell (falls back on older parts)
        return a

    @property
    def attention_compute(self) -> str:
        """dtype attention math runs in: fp8 only when the KV cache is fp8 (FP8 FMHA)."""
        return "fp8" if self.kv_cache == "fp8" else self.activation
