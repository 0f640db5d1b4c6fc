"""Behavioural triggers: rules as files, evaluated every minute over the intake's events
(docs/triggers.md)."""

from personalization.triggers.context import publish_context
from personalization.triggers.rules import TriggerRule, load_rules
from personalization.triggers.runner import TickReport, run_loop, run_once

__all__ = ["TickReport", "TriggerRule", "load_rules", "publish_context", "run_loop", "run_once"]
