"""bandit package."""
