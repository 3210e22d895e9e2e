"""logs service."""
