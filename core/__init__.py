"""The ground layer: configuration, Redis and queues, the database engine, the inbox journal, the loop lock,
the Markdown of Gitea comments.

It imports no other package of the project; everything else stands on it."""
