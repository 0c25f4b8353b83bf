"""The ground layer: configuration, Redis and queues, the database engine, the inbox journal, the loop lock.

It imports no other package of the project; everything else stands on it."""
