"""Benchmarks: printed figures (tokens, throughput, overhead), never timed unit tests. `make bench` runs
them all."""
