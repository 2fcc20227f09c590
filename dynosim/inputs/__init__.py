"""Inputs: user text (traces, flags, config files) to engine and planner values; every problem an InputError."""
