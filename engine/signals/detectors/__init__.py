"""The signal detectors, one module each; ``engine.signals.registry`` imports them all.

To add one: a new module here with one ``Detector`` subclass (see ``engine.signals.base``)
and its test. Nothing else changes.
"""
