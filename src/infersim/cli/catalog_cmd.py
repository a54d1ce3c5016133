"""``infersim hardware list|show`` and ``infersim models list|show``."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..dtypes import bytes_per_element
from ..report.units import fmt_bytes, fmt_count
from .app import console

_DTYPE_ORDER = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4", "int4")


@click.group("hardware")
def hardware_group() -> None:
    """The device catalog."""


@hardware_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def hardware_list(as_json: bool) -> None:
    """All built-in devices with their headline numbers."""
    from ..hardware import builtin_names as hardware_names, get_device

    devices = [get_device(n) for n in hardware_names()]
    if as_json:
        click.echo(json.dumps([{**d.spec.model_dump(), "basis": d.basis} for d in devices], indent=2))
        return
    t = Table(title="Built-in hardware (per device)", title_justify="left")
    for col in ("name", "device", "bf16 TFLOP/s", "fp8 TFLOP/s", "memory", "mem BW", "scale-up", "TDP", "$/h"):
        t.add_column(col, justify="left" if col in ("name", "device") else "right")
    for d in devices:
        fp8 = d.spec.compute.dense_tflops.get("fp8")
        t.add_row(d.name, d.display_name, f"{d.peak_flops('bf16') / 1e12:,.0f}",
                  f"{fp8:,.0f}" if fp8 else "-", fmt_bytes(d.memory_bytes),
                  f"{d.memory_bandwidth_bytes_per_s / 1e12:.2f} TB/s",
                  f"{d.scale_up.bandwidth_bytes_per_s / 1e9:,.0f} GB/s x{d.scale_up.domain_size}",
                  f"{d.tdp_w:.0f} W", f"{d.usd_per_hour:.2f}" if d.usd_per_hour else "-")
    console.print(t)


@hardware_group.command("show")
@click.argument("name", metavar="NAME[@spec]")
@click.option("--json", "as_json", is_flag=True)
def hardware_show(name: str, as_json: bool) -> None:
    """Every number of one device (NAME or path to a YAML) with its source."""
    from ..hardware import get_device
    from ..hardware.catalog import builtin_names, load_profile, split_efficiency
    from ..hardware.choices import ENGINE_KERNELS

    d = get_device(name)
    spec = d.spec
    base = split_efficiency(name)[0].lower()
    # the other shipped profiles of a catalog device: fitted on one engine's (or engine release's) kernels
    shipped = [load_profile(base, k) for k in ENGINE_KERNELS] if base in builtin_names() else []
    kernels = {k: p.basis for k, p in zip(ENGINE_KERNELS, shipped) if p is not None}
    # per engine profile, the stages' dtypes its engine's tables did not measure (the default's values)
    defaults = {k: p.provenance.dtypes_kept_from_default for k, p in zip(ENGINE_KERNELS, shipped)
                if p is not None and p.provenance.dtypes_kept_from_default}
    if as_json:
        click.echo(json.dumps({**spec.model_dump(), "basis": d.basis, "engine_profiles": kernels,
                               "engine_profiles_default_dtypes": defaults}, indent=2))
        return
    console.print(f"[bold]{spec.display_name}[/bold] ({spec.name}, {spec.vendor} {spec.category})")
    t = Table(show_header=True)
    t.add_column("field")
    t.add_column("value", justify="right")
    t.add_column("source")
    c = spec.compute
    for dt in _DTYPE_ORDER:
        if dt in c.dense_tflops:
            sparse = c.sparse_tflops.get(dt)
            t.add_row(f"peak {dt}", f"{c.dense_tflops[dt]:,.1f} TFLOP/s" + (f" ({sparse:,.0f} 2:4)" if sparse else ""),
                      c.source)
    if c.compute_units:
        t.add_row("compute units", str(c.compute_units), c.source)
    m = spec.memory
    given = next(f"{getattr(m, k):g} {u}" for k, u in (("capacity_mib", "MiB"), ("capacity_gib", "GiB"),
                                                        ("capacity_gb", "GB")) if getattr(m, k) is not None)
    t.add_row("memory", f"{given} ({fmt_bytes(d.memory_bytes)})", m.source)
    t.add_row("memory bandwidth", f"{m.bandwidth_gb_per_s:,.0f} GB/s", m.source)
    t.add_row("on-chip SRAM", f"{m.sram_mb:g} MB", m.source)
    for label, link in (("scale-up", spec.scale_up), ("scale-out", spec.scale_out)):
        t.add_row(label, f"{link.name}: {link.bandwidth_gb_per_s:,.0f} GB/s, {link.latency_us:g} us, "
                         f"domain {link.domain_size} ({link.topology})", link.source)
    t.add_row("TDP", f"{spec.power.tdp_w:g} W", spec.power.source)
    if spec.cost:
        t.add_row("price", f"${spec.cost.usd_per_hour:.2f}/h", spec.cost.source)
    e = spec.efficiency
    t.add_row("efficiency", f"compute {e.compute_max_fraction:.2f}, memory {e.memory_max_fraction:.2f}, "
                            f"kernel {e.kernel_overhead_us:g} us", e.source)
    t.add_row("basis", d.basis, "shipped profile (data/profiles) or spec sheet; NAME@spec for the spec-sheet model")
    for k, basis in kernels.items():
        gaps = "; ".join(f"{stage} {', '.join(dts)}" for stage, dts in defaults.get(k, {}).items())
        t.add_row(f"{base}@{k}", basis, f"profile fitted on these kernels only (data/profiles/{k}; docs/profiles.md)"
                                        + (f"; not measured there, the default profile's values: {gaps}" if gaps else ""))
    console.print(t)
    if spec.notes:
        console.print(spec.notes)


@click.group("models")
def models_group() -> None:
    """The model catalog (HuggingFace config.json files)."""


def _model_row(name: str) -> dict:
    from ..models import get_model, kv_cache_bytes_per_token, param_counts

    cfg = get_model(name)
    p = param_counts(cfg)
    return {
        "name": cfg.name, "type": cfg.model_type, "attention": cfg.attention, "layers": cfg.num_layers,
        "hidden": cfg.hidden_size, "heads": f"{cfg.num_attention_heads}/{cfg.num_kv_heads}",
        "experts": f"{cfg.num_experts_per_token}/{cfg.num_experts}" + (f"+{cfg.num_shared_experts}s" if cfg.num_shared_experts else "") if cfg.is_moe else "-",
        "params": p.total, "active_params": p.active_per_token,
        "kv_bytes_per_token_bf16": kv_cache_bytes_per_token(cfg, bytes_per_element("bf16")),
    }


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json: bool) -> None:
    """All built-in models."""
    from ..models import builtin_names as model_names

    rows = [_model_row(n) for n in model_names()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    t = Table(title="Built-in models", title_justify="left")
    for col in ("name", "type", "attention", "layers", "hidden", "q/kv heads", "top-k/experts", "params",
                "active", "KV/token (bf16)"):
        t.add_column(col, justify="left" if col in ("name", "type", "attention") else "right")
    for r in rows:
        t.add_row(r["name"], r["type"], r["attention"], str(r["layers"]), str(r["hidden"]), r["heads"],
                  r["experts"], fmt_count(r["params"]), fmt_count(r["active_params"]),
                  fmt_bytes(r["kv_bytes_per_token_bf16"]))
    console.print(t)


@models_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def models_show(name: str, as_json: bool) -> None:
    """One model (NAME or path to a config.json): architecture, parameters, KV cache."""
    from ..models import builtin_names as model_names
    from ..models import get_model, kv_cache_bytes_per_token, model_metadata, param_counts

    cfg = get_model(name)
    p = param_counts(cfg)
    meta = model_metadata(name) if name in model_names() else {}
    if as_json:
        out = {k: v for k, v in cfg.__dict__.items()}
        out["layer_windows"] = list(cfg.layer_windows)
        out["params"] = p.__dict__
        out["metadata"] = meta
        click.echo(json.dumps(out, indent=2, default=str))
        return
    console.print(f"[bold]{meta.get('display_name', cfg.name)}[/bold] ({cfg.model_type})"
                  + (f"  {meta['hf_repo']}" if meta.get("hf_repo") else ""))
    t = Table(show_header=False)
    t.add_column("field")
    t.add_column("value")
    t.add_row("layers x hidden", f"{cfg.num_layers} x {cfg.hidden_size}")
    t.add_row("attention", f"{cfg.attention}: {cfg.num_attention_heads} q heads, {cfg.num_kv_heads} kv heads, "
                           f"head dim {cfg.head_dim}/{cfg.v_head_dim}")
    if cfg.attention == "mla":
        t.add_row("MLA", f"q_lora {cfg.mla_q_lora_rank}, kv_lora {cfg.mla_kv_lora_rank}, "
                         f"nope {cfg.mla_qk_nope_head_dim}, rope {cfg.mla_qk_rope_head_dim}")
    if cfg.layer_windows:
        sliding = sum(1 for w in cfg.layer_windows if w is not None)
        t.add_row("sliding window", f"{sliding}/{cfg.num_layers} layers, window {max(w or 0 for w in cfg.layer_windows)}")
    if cfg.is_moe:
        t.add_row("MoE", f"{cfg.num_experts} experts, top-{cfg.num_experts_per_token}, width "
                         f"{cfg.moe_intermediate_size}, {cfg.num_shared_experts} shared, "
                         f"{cfg.first_dense_layers} dense first layers")
    if cfg.intermediate_size:
        t.add_row("dense MLP width", str(cfg.intermediate_size))
    t.add_row("vocab", f"{cfg.vocab_size} ({'tied' if cfg.tie_word_embeddings else 'untied'} embeddings)")
    t.add_row("parameters", f"{fmt_count(p.total)} total, {fmt_count(p.active_per_token)} active per token")
    if meta.get("published_params_b"):
        t.add_row("published", f"{meta['published_params_b']}B ({meta.get('source', '')})")
    for dt in ("bf16", "fp8"):
        t.add_row(f"KV cache per token ({dt})", fmt_bytes(kv_cache_bytes_per_token(cfg, bytes_per_element(dt))))
    console.print(t)
