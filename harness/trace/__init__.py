"""trace package."""
