"""Spinner's DAG authoring SDK. DAG authors import from `spinner` itself."""
