"""Heartbeats: recorded in memory, flushed in batches; the sweeper that frees lapsed machines."""
