"""fastlogit's version: the one place it is written.

pyproject.toml reads it from here (``dynamic = ["version"]``), so the installed
metadata, ``fastlogit.__version__``, ``show_config()`` and the model files
always agree.
"""
__version__ = "0.1.0"
