"""Project-wide tests: definitions, CLI, README, samples, example source."""
