"""Test session setup. Shared constants and builders are in helpers.py."""
