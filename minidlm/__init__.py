"""minidlm: a small, readable package for learning diffusion language models.

Each module owns one concept and names the notebook lesson that teaches it.
"""
__version__ = "0.1.0"
