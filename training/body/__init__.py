"""Synthetic bodies, their photo-like renders, and the calibration fitted on them."""
