"""A worker in a language that is not Python, written from docs/wire-protocol.md
alone (examples/perl-greeter/worker.pl): it loads, answers calls and failures,
and what it prints is attributed to the call that printed it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf
from tests.conftest import require_tool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "perl-greeter"


@pytest.fixture
def perl_hub(tmp_path: Path) -> Iterator[cncf.Hub]:
    require_tool("perl")
    with cncf.Hub(home=tmp_path / "home") as hub:
        yield hub


def test_perl_worker_from_the_protocol_doc(perl_hub: cncf.Hub) -> None:
    h = perl_hub.load(EXAMPLE)
    assert h.state == "ready", h.observation
    greeted = perl_hub.call("perl-greeter.greet", ["cncf"])
    assert greeted.value == "hello, cncf"
    assert greeted.stdout == "greeting cncf\n"  # flushed before the reply: the call's own output
    assert perl_hub.call("perl-greeter.add", [1, 2, 3]).value == 6
    failed = perl_hub.call("perl-greeter.fail", [])
    assert failed.observation is not None
    assert failed.observation.code.value == "raised"
    assert failed.observation.stage.value == "execute"


def test_unflushed_output_is_not_the_calls(perl_hub: cncf.Hub, tmp_path: Path) -> None:
    """Without autoflush a Perl worker's prints sit in its buffer: the doc's rule."""
    folder = tmp_path / "buffered"
    shutil.copytree(EXAMPLE, folder)
    worker = folder / "worker.pl"
    worker.write_text(worker.read_text().replace("$| = 1;", "$| = 0;", 1))
    h = perl_hub.load(folder)
    assert h.state == "ready", h.observation
    greeted = perl_hub.call("perl-greeter.greet", ["cncf"])
    assert greeted.value == "hello, cncf"
    assert greeted.stdout == ""
