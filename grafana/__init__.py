"""Grafana dashboards for synthetic-exporter, generated from Python (see ``dashboards.py``)."""
