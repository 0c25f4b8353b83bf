"""ssd-bot: the service's process-level glue (configuration, Redis, CLI)."""
