"""Experiments: one file each, registered with ``@experiment``; run with ``sciml run NAME``."""
