"""Helpers shared by several test modules (tests/ is on sys.path through tests/conftest.py).

A test module never imports another test module: what two of them share lives here (or in a
conftest.py fixture), and tests/unit/test_suite_rules.py keeps it that way."""
