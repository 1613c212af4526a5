"""cexnode: a single-process, Cython-compiled cross-exchange arbitrage node."""
__version__ = "0.1.0"
