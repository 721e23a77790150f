"""arscale: test-time scaling for autoregressive image generators."""

__version__ = "0.1.0"
