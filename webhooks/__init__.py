"""The HTTP edge: verify, parse, journal, enqueue, answer fast."""
