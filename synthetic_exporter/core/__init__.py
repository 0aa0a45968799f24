"""The leaf layer: result records, settings, durations, logging and redaction, stack frames.

Every other layer may import it; it imports none of them. Internal: check code imports
``synthetic_exporter`` (and ``synthetic_exporter.s3``), never this package.
"""
