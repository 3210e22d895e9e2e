"""services service."""
