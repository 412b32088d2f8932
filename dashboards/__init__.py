"""Grafana dashboards, alert rules and their provisioning, shipped as package data."""
