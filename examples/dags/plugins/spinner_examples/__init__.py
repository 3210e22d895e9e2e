"""Shared code for the example DAGs; importable from every partition as `spinner_examples`."""
