"""pytest's entry point for tests/: the harness and the stand-in fixtures are plugins, so every test module
gets their fixtures without importing them (tests/harness.py says what a test may rely on).

The harness imports conftest_gitea, so that comes first: a plugin imported before its turn misses pytest's
assertion rewriting."""

pytest_plugins = ["tests.conftest_gitea", "tests.tiny_model", "tests.harness", "tests.unprivileged"]
