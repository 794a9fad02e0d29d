"""Shared pytest configuration: the embedded Kafka broker and redis-server fixture."""

pytest_plugins = ["tests.embedded_fixtures"]
