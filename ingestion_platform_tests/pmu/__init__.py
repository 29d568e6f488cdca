"""PMU tests."""
