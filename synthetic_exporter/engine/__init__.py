"""The engine: loads check files and runs suites, producing immutable results for listeners.

It handles dependency order, timeouts, cleanups, the ledger, sweeps and the schedule.

Above :mod:`synthetic_exporter.authoring`; knows the exporter only as ``Listener``s. Internal.
"""
