"""Shared test configuration; the vibetuner pytest plugin provides the fixtures."""
