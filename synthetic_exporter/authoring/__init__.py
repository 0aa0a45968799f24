"""What check authors write against: ``Suite``, ``T``, janitors and orphan listings.

Re-exported by ``synthetic_exporter`` (the public surface); import from there, not from here.
Above :mod:`synthetic_exporter.http` and :mod:`synthetic_exporter.core`.
"""
