"""The application: the command line, the ``serve`` agent and its HTTP server.

Also the routes, web config, limits, status page, start-up checks, shutdown, supervision and
the loop watchdog.

The top layer: wires the engine to the exporter. Internal.
"""
