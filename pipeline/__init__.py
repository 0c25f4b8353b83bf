"""The ML side of ssd-bot: suites, sampling, execution, metrics, audit, SSD training, buffer.

Nothing in here knows about Gitea or HTTP; everything is usable from the ``ssd`` CLI alone.
"""
