"""The application: command line, the ``serve`` agent, its HTTP server (routes, web config,
limits, status page), start-up checks, shutdown, supervision and the loop watchdog.

The top layer: wires the engine to the exporter. Internal.
"""
