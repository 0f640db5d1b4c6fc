"""ESP sync: push a published export to an email service provider.

Public surface: `sync(ds, esp, settings, dry_run=False) -> StepReport`, `make_adapter` and
`ADAPTERS`. Modules: `runner` (one sync run), `base` (the adapter interface, plan and apply),
one module per ESP (`mailchimp`, `sendgrid`, `klaviyo`, `file_drop`), `http` (retries,
backoff, rate limits), `sync_log`, `reader` (the export), `feedback` (suppressions read back).
"""

from __future__ import annotations

from personalization.esp.runner import ADAPTERS, make_adapter, sync

__all__ = ["ADAPTERS", "make_adapter", "sync"]
