"""docs/observations.md is generated from the registry and names real tests."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("observations_doc", ROOT / "scripts" / "observations_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_observation_doc_is_in_sync_with_the_registry():
    gen = _generator()
    assert (ROOT / "docs" / "observations.md").read_text() == gen.render(), "run: python scripts/observations_doc.py"


def test_every_test_named_in_the_doc_exists():
    gen = _generator()
    for code, tests in gen.PRODUCED_BY.items():
        for ref in tests:
            path, _, func = ref.partition("::")
            text = (ROOT / path).read_text()
            assert re.search(rf"^(async )?def {re.escape(func)}\(", text, re.M), f"{code}: {ref} not found"


def test_every_code_has_a_producing_test():
    gen = _generator()
    missing = [c.value for c in gen.PRODUCED_BY if not gen.PRODUCED_BY[c]]
    missing += [c.value for c in type(next(iter(gen.PRODUCED_BY))) if c not in gen.PRODUCED_BY]
    assert not missing, f"codes with no producing test: {missing}"
