"""Market data: publishing the engine's public events (trades, book levels, instrument status)."""
