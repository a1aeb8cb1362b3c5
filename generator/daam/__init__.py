"""DAAM stage: word heat maps from cross-attention (Tang et al. 2023, "What the DAAM").

``trace`` records, ``Trace`` answers (word maps, masks, maps over time); ``capture`` holds the recording
processors, ``aggregate`` the math (Eq. 6 and 7), ``words`` the word <-> token alignment.
"""

from __future__ import annotations

from generator.daam.trace import Trace, trace

__all__ = ["Trace", "trace"]
