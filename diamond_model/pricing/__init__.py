"""Turning a stone into a price and its reasons: the monotone LightGBM regressor and its
artefact format (data, never code), per-feature contributions (the dollar waterfall), intervals,
the market index, confidence, whole-frame estimates, the quote a person reads, comparables.

Depends on `data` only; knows nothing of storage or the web.
"""
