"""The simulated venues (public side): one module per venue, same roles as ``cexnode.adapters``."""
