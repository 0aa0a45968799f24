"""The engine: loads check files and runs suites (dependency order, timeouts, cleanups, ledger,
sweeps, schedule), producing immutable results for listeners.

Above :mod:`synthetic_exporter.authoring`; knows the exporter only as ``Listener``s. Internal.
"""
