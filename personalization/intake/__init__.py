"""Near-real-time event intake: signed pixel events into durable day files (docs/triggers.md)."""

from personalization.intake.app import create_app, serve, signature
from personalization.intake.store import EventStore, day_file

__all__ = ["EventStore", "create_app", "day_file", "serve", "signature"]
