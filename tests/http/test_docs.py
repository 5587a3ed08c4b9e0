"""docs/http.md's per-code status list is the status table's."""

from __future__ import annotations

import re
from pathlib import Path

from cncf.observation import Code, Observation
from cncf.receptions.http.status import status_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"


def test_every_code_has_its_status_in_the_doc() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|$", DOC.read_text(), re.M))
    assert set(rows) == {c.value for c in Code}
    for code in Code:
        assert int(rows[code.value]) == status_of(Observation.of(code, "x")), code
