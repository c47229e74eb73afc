"""Tools for sqs-rpc's developers: the soak and receive_race (see tools/README.md)."""
