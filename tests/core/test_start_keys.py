"""``classpath``, ``init`` and ``build_constraints`` are validated like every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cncf.manifest import locate
from cncf.observation import Failed


def _manifest(folder: Path, body: str, form: str = "python") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.py").write_text("def f():\n    return 1\n")
    (folder / "app.jar").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    artifact = 'artifact = "app.jar"\n' if form == "jar" else ""
    (folder / "cncf.toml").write_text(f'[component]\nname = "c"\nform = "{form}"\nentry = "m"\n{artifact}{body}')
    return folder


def _code(folder: Path) -> tuple[str, str | None]:
    with pytest.raises(Failed) as err:
        locate(folder)
    obs = err.value.observation
    return obs.code.value, obs.attributes.get("key")


def test_classpath_globs_relative_to_the_manifest(tmp_path: Path) -> None:
    lib = tmp_path / "c" / "lib"
    lib.mkdir(parents=True)
    for n in ("b.jar", "a.jar", "notes.txt"):
        (lib / n).write_bytes(b"x")
    spec = locate(_manifest(tmp_path / "c", 'classpath = ["lib/*.jar"]\n', "jar"))
    assert [p.name for p in spec.classpath] == ["a.jar", "b.jar"]


@pytest.mark.parametrize(
    ("body", "form", "code"),
    [
        ('classpath = ["lib/*.jar"]\n', "jar", ("invalid_manifest", "component.classpath")),  # matches nothing
        ('classpath = ["missing.jar"]\n', "jar", ("artifact_not_found", "component.classpath")),
        ("classpath = [1]\n", "jar", ("invalid_manifest", "component.classpath")),
        ('classpath = ["x.jar"]\n', "python", ("invalid_manifest", "component.classpath")),
        ('init = "x"\n', "python", ("invalid_manifest", "component.init")),
        ("init = [1979-05-27]\n", "python", ("invalid_manifest", "component.init")),
        (
            'build_constraints = ["--index-url=http://x"]\n',
            "python",
            ("invalid_manifest", "component.build_constraints"),
        ),
        ('build_constraints = ["cython<3"]\n', "jar", ("invalid_manifest", "component.build_constraints")),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, body: str, form: str, code: tuple[str, str]) -> None:
    assert _code(_manifest(tmp_path / "c", body, form)) == code


def test_init_table_and_list(tmp_path: Path) -> None:
    named = locate(_manifest(tmp_path / "a", '[component.init]\nprefix = ">"\ntimes = 2\n'))
    assert named.init == {"prefix": ">", "times": 2}
    positional = locate(_manifest(tmp_path / "b", 'init = [">", 2]\n'))
    assert positional.init == [">", 2]
    assert locate(_manifest(tmp_path / "d", 'build_constraints = ["cython<3"]\n')).build_constraints == ("cython<3",)
