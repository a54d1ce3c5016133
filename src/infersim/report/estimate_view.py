"""Rich rendering of a static :class:`~infersim.perf.estimate.Estimate`."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table

from ..perf.estimate import Estimate
from .units import fmt_bytes, fmt_rate, fmt_time, print_basis


def render_estimate(est: Estimate, console: Console) -> None:
    par, prec = est.parallel, est.precision
    title = (f"{est.model} on {est.devices} x {est.device} (tp={par.tp} pp={par.pp} ep={par.ep}), "
             f"batch {est.batch}, {est.input_tokens} in / {est.output_tokens} out, "
             f"weights {prec.weight} / act {prec.activation} / KV {prec.kv_cache}, runtime {est.runtime}")
    console.print(f"[bold]{title}[/bold]")
    print_basis([f"{est.device}: {est.device_basis}"], console)
    for t in est.transforms:
        console.print(f"transform {t.spec()}: accuracy {t.accuracy().label}")
    for note in est.notes:
        console.print(f"[yellow]note:[/yellow] {note}")

    mem = est.memory
    mt = Table(title="Memory per device", title_justify="left")
    mt.add_column("item")
    mt.add_column("bytes", justify="right")
    mt.add_column("of usable", justify="right")
    for label, value in (("weights", mem.weights_bytes), ("KV cache", mem.kv_cache_bytes),
                         ("activations (peak)", mem.activation_bytes), ("headroom", mem.headroom_bytes)):
        mt.add_row(label, fmt_bytes(value), f"{100 * value / mem.usable_bytes:.1f}%")
    mt.add_row("usable / capacity", f"{fmt_bytes(mem.usable_bytes)} / {fmt_bytes(mem.capacity_bytes)}", "")

    if not est.fits:
        console.print(mt)
        console.print(f"[bold red]Does not fit:[/bold red] needs {fmt_bytes(mem.used_bytes)} per device, "
                      f"{fmt_bytes(mem.usable_bytes)} usable ({fmt_bytes(-mem.headroom_bytes)} short). "
                      "Try a larger --tp/--pp, a narrower --weight-dtype/--kv-dtype, or a smaller --batch.")
        return

    lt = Table(title="Latency and throughput", title_justify="left")
    lt.add_column("metric")
    lt.add_column("value", justify="right")
    rows = [
        ("prefill (whole batch)", fmt_time(est.prefill_s)),
        ("decode step (mean)", fmt_time(est.decode_step_s)),
        ("TTFT", fmt_time(est.ttft_s)),
        ("TPOT", fmt_time(est.tpot_s)),
        *([("tokens per speculative round", f"{est.tokens_per_round:.2f}")] if est.tokens_per_round != 1.0 else []),
        ("end-to-end per request", fmt_time(est.e2e_s)),
        ("output tokens/s (replica)", fmt_rate(est.output_tokens_per_s, "tok/s")),
        ("output tokens/s per device", fmt_rate(est.output_tokens_per_s / est.devices, "tok/s")),
        ("input tokens/s (replica)", fmt_rate(est.input_tokens_per_s, "tok/s")),
        ("prefill MFU", f"{100 * est.prefill_mfu:.1f}%"),
        ("decode memory-bandwidth util.", "-" if est.decode_mbu != est.decode_mbu else f"{100 * est.decode_mbu:.1f}%"),
        ("power per device (model)", f"{est.power_w_per_device:.0f} W"),
        ("energy per output token", f"{est.joules_per_output_token:.3f} J"),
    ]
    if est.usd_per_million_output_tokens is not None:
        rows.append(("$ per million output tokens", f"${est.usd_per_million_output_tokens:.3f}"))
    for r in rows:
        lt.add_row(*r)

    ot = Table(title="Top operators (all layers)", title_justify="left")
    ot.add_column("operator", overflow="fold", min_width=18)
    for col, just in ( ("prefill", "right"), ("bound", "left"),
                      ("decode step", "right"), ("bound", "left"), ("share of e2e", "right")):
        ot.add_column(col, justify=just)
    for op in est.operators:
        pre = (fmt_time(op.prefill_s), op.prefill_bound) if op.prefill_s > 0 else ("-", "-")
        dec = (fmt_time(op.decode_step_s), op.decode_bound) if op.decode_step_s > 0 else ("-", "-")
        ot.add_row(op.name, *pre, *dec, f"{100 * op.share:.1f}%")
    console.print(Group(lt, mt, ot))
