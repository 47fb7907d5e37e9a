"""Candles from exchanges (ccxt) into the ``data/`` store, in freqtrade's layout."""

from engine.fetch.store import default_datadir, resolve_data_args, resolve_ref

__all__ = ["default_datadir", "resolve_data_args", "resolve_ref"]
