from __future__ import annotations

import cncf
from tests.placement.conftest import ECHO, RayCluster


def test_python_on_a_chosen_node(placed_hub: cncf.Hub, ray_cluster: RayCluster) -> None:
    h = placed_hub.load(ECHO, placement="ray", placement_resources={"beta": 1})
    assert h.state == "ready", h.observation
    assert placed_hub.call("echo.echo", [{"a": [1, 2]}]).value == {"a": [1, 2]}
    where = placed_hub.call("echo.where").value
    assert where["node"] == "beta"
    p = placed_hub.inspect("echo")["placement"]
    assert p["engine"] == "ray" and p["node_id"] == ray_cluster.node_id("beta")
    out = placed_hub.call("echo.shout", ["hi"])
    assert out.value == 2 and out.stdout == "HI\n" and out.stderr == "to stderr\n"
