"""Names the command line offers before any device is loaded (kept free of heavy imports)."""

#: efficiency models of catalog devices: their shipped profiles, or the spec sheet alone
EFFICIENCY_CHOICES: tuple[str, ...] = ("calibrated", "spec")
