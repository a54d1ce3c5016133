"""Human-facing rendering (rich tables) and unit formatting."""
