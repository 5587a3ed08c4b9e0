"""The README's serving lines, for real: ``cncf serve examples/hub.toml``, the
curl call, the dashboard URL and the three lines of client Python."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cncf
from tests.conftest import require_tool
from tests.http.conftest import alive, child_pids, start
from tests.test_main_job import ROOT, build_examples


def test_serving_the_bundled_examples(tmp_path: Path) -> None:
    require_tool("node")
    require_tool("java")
    curl = require_tool("curl")
    build_examples()
    s = start(ROOT / "examples" / "hub.toml", tmp_path / "home", timeout=600)
    try:
        comps = s.http.get("/hub/v1/components").json()["components"]
        assert {c["form"] for c in comps} == {"python", "command", "jar"}
        assert all(c["state"] == "ready" for c in comps), comps
        assert "inventory" in {c["name"] for c in comps}
        r = subprocess.run(
            [curl, "-s", "--json", '{"by": 2}', f"{s.url}/rest/v1/counter/increment"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(r.stdout) == {"ok": True, "value": 2}
        assert "<title>cncf hub</title>" in s.http.get("/").text
        hub = cncf.connect(s.url)
        print(hub.call("inventory.add", {"sku": "apple", "qty": 3}).value)
        assert hub.call("inventory.total").value == 3
        assert hub.call("strings.is-blank", ["  "]).value is True
        hub.close()
        children = child_pids(s.proc.pid)
        assert len(children) >= 5  # python and node workers, the JVM host
    finally:
        code, err = s.stop()
    assert code == 0, err
    assert not [pid for pid in children if alive(pid)], "processes outlived cncf serve"
    assert list(s.tmp.iterdir()) == [], "temporary folders left behind"
