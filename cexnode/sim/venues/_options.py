"""The simulated venues' own knobs: keys under ``sim:`` that one simulator venue reads.

Each is a rule of the real venue the simulator follows, made adjustable so that a test need not
wait for it (a connection closed after 24 h) or can switch a venue's quirk on. They are fields of
:class:`cexnode.config.SimConfig` (this class is its base), declared here, next to the simulator
venues that read them, so that the config module names no venue. Field metadata as
``cexnode.config.opt`` writes it (``doc``, ranges); this module imports nothing of the config
module, which imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SimVenueOptions"]


def _opt(default, doc: str, **ranges):
    return field(default=default, metadata={"doc": doc, **ranges})


@dataclass(frozen=True, kw_only=True)
class SimVenueOptions:
    mexc_no_subscription_close_s: float = _opt(30.0, "mexc_spot closes a connection without a valid subscription after this long (venue rule: 30 s).", gt=0, le=86400)
    mexc_max_connection_age_s: float = _opt(86400.0, "mexc_spot closes every connection after this long (venue rule: 24 h); lower it to test rotation.", gt=0, le=864000)
    gate_python_bools: bool = _opt(False, "gateio_spot and gateio_futures: REST boolean query flags (with_id) also take Python's True/False, as the gate-api SDK sends them; false: only true/false, other spellings answer 400 INVALID_PARAM_VALUE as Gate did (the only evidence, 2021).")
