"""lib tests."""
