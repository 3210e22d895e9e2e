"""The fault suite of issue 13 (`make resilience`): one fault injected into a running `spinner standalone`
on MariaDB, Mosquitto and S3 of its own, then every run, try and execution counted. See __main__.py."""
