"""Test-only extensions that show how a sampler, a metric or a data source is added: one new file each, plus one
registry entry (docs/architecture.md)."""
