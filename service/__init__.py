"""The identification HTTP service (built in a later step)."""
