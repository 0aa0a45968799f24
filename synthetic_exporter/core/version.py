"""The agent's version (also ``synthetic_exporter.__version__``); keep it equal to pyproject's."""

__version__ = "0.1.0"
