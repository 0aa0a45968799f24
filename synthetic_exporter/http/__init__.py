"""HTTP for checks: transports, their timing, CDN attribution and target clients.

The timing vocabulary (a leaf both transports use), our HTTP/1.1 transport, the HTTP/2 path on
httpcore, the instrumented transport, CDN attribution and target clients.

Above :mod:`synthetic_exporter.core` only. Internal: check code reaches it through ``t.http``.
"""
