"""Tests of monitoring/: metric catalogue, alert rules, dashboards, and a live Prometheus over the stack."""
