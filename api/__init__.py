"""The HTTP service around a built index (see ``docs/architecture.md`` for its packages)."""
