"""Repository-level suites: solved issues (merged PRs with tests) as SWE-bench-style instances.

Nothing here talks to Gitea or HTTP: code and PR data come through a ``RepoSource`` (``source.py``),
implemented for Gitea in ``bot/repo_source.py``.

- ``instances``: the ``Instance`` record (SWE-bench field names) and its JSONL file.
- ``patches``: unified diffs split per file and into source/test parts; applying a patch with fuzz.
- ``workspace``: archives cached per commit, one prepared git directory per base commit, fresh work trees.
- ``environment``: a venv per dependency-files hash, built once and reused.
- ``jail`` / ``testrun``: the repository's tests in the executor's sandbox, per-test results from JUnit XML.
- ``build``: merged PRs -> validated instances (or a drop reason each).
- ``score``: SWE-bench predictions -> resolved / unresolved / patch_failed verdicts.
- ``edits`` / ``generate``: a model's search/replace blocks -> a patch; ``ssd eval`` on an instance file.
"""
