"""The scheduler's domain logic: parsing, runs, task instances, leases. Never speaks gRPC or HTTP."""
