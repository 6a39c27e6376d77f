"""Evaluation: metrics through ranx, and the SPLADE-v3 paper's analysis tools."""

from .metrics import DEFAULT_METRICS, evaluate

__all__ = ["DEFAULT_METRICS", "evaluate"]
