"""The names of the accelerator-template search knobs (``chip.<knob>``), apart from the template
machinery (:mod:`infersim.hardware.template.knobs`) so that the evaluators' defaults import without it."""

#: the value of a chip knob that keeps the template's own field
KEEP = "template"

#: knob -> path of the field it sets in the template mapping; setting a count also enables all of it
CHIP_KNOBS: dict[str, tuple[str, ...]] = {
    "chip.process_node": ("process_node",),
    "chip.clock_ghz": ("clock_ghz",),
    "chip.cores": ("cores", "count"),
    "chip.lanes": ("cores", "lanes"),
    "chip.array_rows": ("cores", "array_rows"),
    "chip.array_cols": ("cores", "array_cols"),
    "chip.vector_lanes": ("cores", "vector_lanes"),
    "chip.local_sram_kib": ("cores", "local_sram_kib"),
    "chip.global_buffer_mib": ("global_buffer_mib",),
    "chip.memory_technology": ("memory", "technology"),
    "chip.memory_stacks": ("memory", "stacks"),
    "chip.max_area_mm2": ("budget", "max_area_mm2"),
    "chip.max_tdp_w": ("budget", "max_tdp_w"),
    "chip.max_usd": ("budget", "max_usd"),
}
