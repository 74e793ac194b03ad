"""Customer connectors: `base` (the connector protocol) plus one package per platform.

Nothing here imports a platform: the composition root (`bridge.registry`) imports each one
only when it is enabled."""
