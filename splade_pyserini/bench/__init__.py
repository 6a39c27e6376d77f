"""Benchmarks: commands that measure this package against its peers in the same run and print the ratios."""
