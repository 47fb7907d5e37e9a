"""The broker: orders, fills, positions and trailing stops, one cash wallet.

``event_search`` holds the compiled scans that mirror the broker's exit and limit checks;
the two change together.
"""

from engine.broker.broker import Broker, BrokerConfig
from engine.types import Rejection

__all__ = ["Broker", "BrokerConfig", "Rejection"]
