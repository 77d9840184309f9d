"""roomcast: self-hosted RTC rooms and cloud recording."""

__version__ = "0.1.0"
