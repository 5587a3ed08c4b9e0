"""The JVM host and collaborator API are built from the project's sources at
Java 8 level, cached by a hash of the sources and the JDK."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from cncf.jvm import build


def _majors(jar: Path) -> set[int]:
    with zipfile.ZipFile(jar) as zf:
        return {struct.unpack(">H", zf.read(n)[6:8])[0] for n in zf.namelist() if n.endswith(".class")}


def test_jars_are_java_8_bytecode(jvm) -> None:  # noqa: ANN001
    assert _majors(jvm.host_jar) == {52}
    assert _majors(jvm.api_jar) == {52}
    with zipfile.ZipFile(jvm.api_jar) as zf:
        names = {n for n in zf.namelist() if n.endswith(".class")}
    assert names == {
        f"cncf/collaborator/{c}.class" for c in ("ActionCall", "Collaborator", "Operations", "Rejected", "Result")
    }
    with zipfile.ZipFile(jvm.host_jar) as zf:
        assert "Main-Class: cncf.host.Host" in zf.read("META-INF/MANIFEST.MF").decode()
        assert not any(n.startswith("cncf/collaborator/") for n in zf.namelist())  # the API is not the host's


def test_build_is_cached_by_source_hash(jvm, jvm_cache: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(build, "_MEMO", {})
    before = jvm.host_jar.stat().st_mtime_ns
    again = build.ensure_built(jvm_cache)
    assert again.host_jar == jvm.host_jar
    assert again.host_jar.stat().st_mtime_ns == before  # not rebuilt
    assert build.is_built(jvm_cache)
    assert jvm.host_jar.parent.name == build.source_hash(build._jdk_identity(build._tool("javac")))
