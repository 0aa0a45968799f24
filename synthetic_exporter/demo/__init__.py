"""The demo target of the example checks, all on 127.0.0.1.

- :mod:`~synthetic_exporter.demo.api`: a customer API (sign-up, invoices, payments with a
  challenge), a CloudFront-like CDN edge in front of an S3-like origin
  (:mod:`~synthetic_exporter.demo.edge`), its OpenAPI document
  (:mod:`~synthetic_exporter.demo.openapi`) and fault injection;
- :mod:`~synthetic_exporter.demo.storage`: moto's S3 server with a versioned bucket;
- :mod:`~synthetic_exporter.demo.run`: the ``demo`` command, which starts both and the agent.
"""
