"""Turning per-frame model outputs into events."""
