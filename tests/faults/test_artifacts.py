"""Only regular files are artifacts and manifests (issue 16, item 3).

A ``.pyz`` or ``.jar`` that is a symlink to ``/dev/zero``, a FIFO where the
artifact or the manifest should be, a symlink leaving the component's folder,
a 400 MB manifest: each is refused at load with an Observation, quickly,
without the hub's memory growing and without holding up its neighbours.
"""

from __future__ import annotations

import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

import cncf
from tests.faults.conftest import Maker, load


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_bounded(hub: cncf.Hub, target: Path, seconds: float = 20.0) -> cncf.ComponentHandle:
    """Load in a thread so a hang fails the test instead of freezing it."""
    box: list[cncf.ComponentHandle] = []
    t = threading.Thread(target=lambda: box.append(hub.load(target)), daemon=True)
    t.start()
    t.join(seconds)
    assert box, f"loading {target} did not finish within {seconds}s"
    return box[0]


def folder_with(tmp_path: Path, name: str, form: str, artifact: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    entry = "app:App" if form == "python" else "app.App"
    (folder / "cncf.toml").write_text(
        f'[component]\nname = "{name}"\nform = "{form}"\nartifact = "{artifact}"\nentry = "{entry}"\n'
    )
    return folder


@pytest.mark.parametrize(("form", "artifact"), [("python", "app.pyz"), ("jar", "app.jar")])
def test_symlink_to_dev_zero_is_refused_without_reading(
    fhub: cncf.Hub, make: Maker, tmp_path: Path, form: str, artifact: str
) -> None:
    load(fhub, make("python", "neighbour"))
    folder = folder_with(tmp_path, "zero", form, artifact)
    (folder / artifact).symlink_to("/dev/zero")
    before = rss_mb()
    started = time.monotonic()
    handle = load_bounded(fhub, folder)
    assert time.monotonic() - started < 10
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.stage) == ("invalid_archive", "load")
    assert handle.observation.attributes["reason"] == "symlink_leaves_folder"
    assert rss_mb() - before < 100
    assert fhub.call("neighbour.bump").value == 1


@pytest.mark.parametrize("where", ["manifest_artifact", "direct_target"])
def test_fifo_as_artifact_is_refused_and_calls_go_on(fhub: cncf.Hub, make: Maker, tmp_path: Path, where: str) -> None:
    load(fhub, make("python", "neighbour"))
    folder = folder_with(tmp_path, "fifo", "python", "app.pyz")
    fifo = folder / "app.pyz"
    os.mkfifo(fifo)
    handle = load_bounded(fhub, folder if where == "manifest_artifact" else fifo)
    assert handle.state == "failed"
    assert (handle.observation.code, handle.observation.stage) == ("invalid_archive", "load")
    assert handle.observation.attributes["file_type"] == "fifo"
    assert fhub.call("neighbour.bump").value == 1


def test_device_as_direct_target_is_refused(fhub: cncf.Hub, tmp_path: Path) -> None:
    link = tmp_path / "app.pyz"
    link.symlink_to("/dev/zero")  # named by the user: resolved, then found to be a device
    handle = load_bounded(fhub, link)
    assert (handle.observation.code, handle.observation.attributes["file_type"]) == (
        "invalid_archive",
        "character device",
    )


def test_fifo_manifest_is_invalid_manifest(fhub: cncf.Hub, tmp_path: Path) -> None:
    folder = tmp_path / "fifo-manifest"
    folder.mkdir()
    os.mkfifo(folder / "cncf.toml")
    handle = load_bounded(fhub, folder)
    assert (handle.observation.code, handle.observation.attributes["reason"]) == (
        "invalid_manifest",
        "not_regular_file",
    )


def test_manifest_symlink_leaving_the_folder_is_not_read(fhub: cncf.Hub, tmp_path: Path) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text('[component]\nname = "TOPSECRET-VALUE"\nnot_a_key = "TOPSECRET-VALUE"\n')
    folder = tmp_path / "slip"
    folder.mkdir()
    (folder / "cncf.toml").symlink_to(secret)
    handle = load_bounded(fhub, folder)
    assert (handle.observation.code, handle.observation.attributes["reason"]) == (
        "invalid_manifest",
        "symlink_leaves_folder",
    )
    assert "TOPSECRET-VALUE" not in str(handle.observation.to_dict())


def test_400_mb_manifest_is_refused_before_it_is_read(fhub: cncf.Hub, tmp_path: Path) -> None:
    folder = tmp_path / "huge"
    folder.mkdir()
    with open(folder / "cncf.toml", "wb") as f:
        f.write(b'[component]\nname = "huge"\n# ')
        f.truncate(400 * 2**20)  # sparse: costs no disk, but reading it whole costs 400 MB
    before = rss_mb()
    handle = load_bounded(fhub, folder)
    assert (handle.observation.code, handle.observation.attributes["reason"]) == ("invalid_manifest", "too_large")
    assert rss_mb() - before < 100


def test_oversized_manifest_inside_an_archive_is_refused(fhub: cncf.Hub, tmp_path: Path) -> None:
    pyz = tmp_path / "big.pyz"
    with zipfile.ZipFile(pyz, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__main__.py", "")
        zf.writestr("cncf.toml", '[component]\nname = "big"\n#' + " " * (8 * 2**20) + "\n")
    handle = load_bounded(fhub, pyz)
    assert (handle.observation.code, handle.observation.attributes["reason"]) == ("invalid_manifest", "too_large")


def test_symlink_inside_the_folder_is_still_followed(fhub: cncf.Hub, make: Maker) -> None:
    folder = make("python", "linked")
    os.rename(folder / "linked_rogue.py", folder / "real_rogue.py")
    (folder / "linked_rogue.py").symlink_to("real_rogue.py")
    load(fhub, folder)
    assert fhub.call("linked.bump").value == 1


def test_fifo_wheel_is_refused_before_it_is_hashed(fhub: cncf.Hub, make: Maker) -> None:
    folder = make("python", "wheelfifo")
    os.mkfifo(folder / "extra-1.0-py3-none-any.whl")
    with open(folder / "cncf.toml", "a") as f:
        f.write('wheels = ["extra-1.0-py3-none-any.whl"]\n')
    handle = load_bounded(fhub, folder)
    assert (handle.observation.code, handle.observation.attributes["file_type"]) == ("invalid_archive", "fifo")
