"""Suite-wide settings. Hypothesis: deterministic in `make test`; CEXNODE_LONG=1 runs the long profile."""
import os

import pytest
from hypothesis import HealthCheck, settings

# The shared helpers in tests/support assert too: rewritten like the test modules they came from,
# so that a failing helper assertion still shows its operands.
pytest.register_assert_rewrite("support")

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, print_blob=True, max_examples=100_000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("long" if os.environ.get("CEXNODE_LONG") else "ci")
