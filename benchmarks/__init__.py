"""Benchmarks for the course (`make bench`): one figure a line, as `name: value unit`."""
