"""The continuous loop's pure parts (issue #12): the promotion gate. The run itself, the schedule and the
lock live outside ``pipeline`` (they need Redis/RQ)."""
