"""Command groups of the `arscale` CLI, one module each."""
