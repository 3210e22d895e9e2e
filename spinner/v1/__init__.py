"""Generated protobuf and gRPC code: never edit, run `make protos`."""
