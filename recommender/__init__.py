"""Similar clinical trials: the engine (see ``docs/architecture.md`` for its packages)."""
