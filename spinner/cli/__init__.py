"""The `spinner` command line."""
