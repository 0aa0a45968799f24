"""Alerting rules for synthetic-exporter, generated from alerts/config.yaml (`make alerts`)."""
