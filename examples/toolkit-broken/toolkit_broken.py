"""A plugin that fails on import, to show that toolkit reports it and keeps working."""

raise RuntimeError("toolkit-broken fails on purpose")
