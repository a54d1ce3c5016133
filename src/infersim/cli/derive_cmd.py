"""``infersim hardware derive FILE``: an accelerator template's peaks, area, power and cost."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ..errors import ConfigError
from ..userfile import load_yaml_mapping
from .app import console


def load_template_file(path: Path):
    """The accelerator template of a YAML file (read through the checked user-file loader)."""
    from ..hardware.template import parse_template

    data = load_yaml_mapping(path)
    if "template" not in data:
        raise ConfigError(path, "template", "expected a top-level 'template' mapping (an accelerator template)")
    return parse_template(data, path)


@click.command("derive")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="the chip report as JSON")
def derive_cmd(path: Path, as_json: bool) -> None:
    """Derive a device from an accelerator template: peaks, bandwidth, die area, TDP and cost.

    The derived device works wherever a hardware file does: pass PATH as --hardware.
    """
    from ..hardware.template import derive

    template = load_template_file(path)
    _, report = derive(template, path)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    console.print(f"[bold]{template.display_name or template.name}[/bold] ({template.process_node}, "
                  f"{template.clock_ghz:g} GHz)")
    t = Table(title="Die area by component", title_justify="left")
    t.add_column("component")
    t.add_column("mm2", justify="right")
    t.add_column("share", justify="right")
    for name, mm2 in report.area_mm2.items():
        t.add_row(name, f"{mm2:,.1f}", f"{mm2 / report.die_area_mm2:.0%}")
    t.add_row("[bold]die[/bold]", f"[bold]{report.die_area_mm2:,.1f}[/bold]", "100%")
    console.print(t)
    s = Table(title="Derived figures", title_justify="left", show_header=False)
    s.add_column("figure")
    s.add_column("value", justify="right")
    for dtype, tflops in report.peak_tflops.items():
        s.add_row(f"peak {dtype}", f"{tflops:,.1f} TFLOP/s")
    s.add_row("memory", f"{report.memory_gib:g} GiB at {report.memory_gb_per_s:,.0f} GB/s")
    s.add_row("TDP (static + full-load dynamic)", f"{report.tdp_w:,.0f} W")
    for dtype, pj in report.pj_per_flop.items():
        s.add_row(f"energy per {dtype} FLOP", f"{pj:.3f} pJ")
    s.add_row("energy per DRAM byte", f"{report.pj_per_dram_byte:.1f} pJ")
    s.add_row("dies per 300 mm wafer", f"{report.dies_per_wafer:,.1f}")
    s.add_row("yield", f"{report.yield_fraction:.1%}")
    s.add_row("$ per good die", f"${report.die_usd:,.0f}")
    s.add_row("$ memory", f"${report.memory_usd:,.0f}")
    s.add_row("$ die + memory", f"${report.total_usd:,.0f}")
    console.print(s)
    for violation in report.violations:
        console.print(f"[red]over budget:[/red] {violation}")
    if report.violations:
        raise SystemExit(1)
