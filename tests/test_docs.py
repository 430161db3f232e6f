"""The docs cite tests by name: every cited test exists, so a promise never points at nothing."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["docs/reliability.md", "docs/errata.md"])
def test_every_test_a_doc_cites_exists(doc):
    text = (ROOT / doc).read_text()
    refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", text)
    missing = []
    for path, name in refs:
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"^\s*def {name}\(", source.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc} cites tests that do not exist: {missing}"
    if doc == "docs/reliability.md":
        assert len(refs) > 50  # the doc is organised around its tests
