"""Pure-Python reference implementations (test oracles) for the compiled _core modules."""
