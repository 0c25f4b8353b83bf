"""The reports' own Markdown: the reproducibility footer (tables and code come from ``core.markdown``)."""

from __future__ import annotations

import json
import re

from bot.reports import footer


def test_footer_is_collapsed_readable_and_machine_readable() -> None:
    provenance = {
        "model": "smollm2",
        "model_sha256": "ab12",
        "sampling": {"temperature": 0.2, "n": 5},
        "seeds": [0, 1],
        "versions": {"rq": "2.12.0"},
        "skipped": None,
        "command": "ssd eval --suite basic --temperature 0.2",
    }
    text = footer(provenance)
    assert text.startswith("<details>\n<summary>Reproducibility</summary>")
    assert "| **model** | smollm2 |" in text
    assert "| **sampling** | temperature=0.2, n=5 |" in text
    assert "| **seeds** | 0, 1 |" in text
    assert "skipped" not in text.split("<!--")[0]  # None values are left out of the table
    assert "```sh\nssd eval --suite basic --temperature 0.2\n```" in text
    embedded = re.search(r"<!-- ssd-provenance (.*) -->", text).group(1)
    assert json.loads(embedded)["sampling"] == {"temperature": 0.2, "n": 5}


def test_footer_json_cannot_close_the_html_comment_early() -> None:
    text = footer({"commit": "x --> y"})
    comment = text[text.index("<!-- ssd-provenance") :]
    assert comment.count("-->") == 1 and comment.endswith("-->\n\n</details>")
    assert json.loads(re.search(r"<!-- ssd-provenance (.*) -->", text).group(1)) == {"commit": "x --> y"}
