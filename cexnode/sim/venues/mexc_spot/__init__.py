"""Simulated MEXC spot v3: public streams and REST (:mod:`.public`), order API and private streams
(:mod:`.trading`), request signatures (:mod:`.auth`) and the protobuf push encoder (:mod:`.proto`)."""
from __future__ import annotations

from .public import MexcSpotVenue

__all__ = ["MexcSpotVenue", "SIM_VENUE"]

SIM_VENUE = MexcSpotVenue
