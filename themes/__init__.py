"""Colour themes as data files (``*.toml``), loaded and registered by the TUI at start-up."""
