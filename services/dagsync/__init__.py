"""dagsync service."""
