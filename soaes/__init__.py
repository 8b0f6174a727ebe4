"""The `soaes` command line: one group per package, plus `soaes demo`."""
__version__ = "0.1.0"
