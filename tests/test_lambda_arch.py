"""Each Lambda zip holds native code for its architecture and the runtime's Python only.

Checked without running it: every shared object is an ELF whose e_machine (read from the
header here) is the zip's machine, every wheel it was installed from is tagged for cp312 (or
abi3, or pure Python) and manylinux on that machine, and nothing of the other one slipped in.
"""

from __future__ import annotations

import re
import struct
import zipfile

import pytest
from runtime_api import build_zip, runtime_python

pytestmark = pytest.mark.slow

# ELF e_machine values.
MACHINES = {"arm64": (0xB7, "aarch64"), "x86_64": (0x3E, "x86_64")}


@pytest.fixture(scope="module", params=sorted(MACHINES))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    python, version = runtime_python()
    assert version == "3.12", f"the check is for the python3.12 runtime; found only {python}"
    out = tmp_path_factory.mktemp(request.param) / "lambda.zip"
    return request.param, build_zip(out, python, version, arch=request.param)


def elf_machine(header: bytes) -> int:
    """Return e_machine of a 64-bit little-endian ELF header, or fail on anything else."""
    assert header[:4] == b"\x7fELF", "not an ELF file"
    assert (header[4], header[5]) == (2, 1), "not a 64-bit little-endian ELF"
    return int(struct.unpack_from("<H", header, 18)[0])


def shared_objects(archive: zipfile.ZipFile) -> list[str]:
    return [n for n in archive.namelist() if re.search(r"\.so(\.\d+)*$", n)]


def wheel_tags(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """Return each installed distribution's wheel tags, from its dist-info/WHEEL."""
    tags = {}
    for name in archive.namelist():
        if name.endswith(".dist-info/WHEEL"):
            text = archive.read(name).decode()
            tags[name.split("/")[0]] = re.findall(r"^Tag: (\S+)$", text, re.MULTILINE)
    return tags


def fits(tag: str, machine: str) -> bool:
    """Tell whether one wheel tag runs on CPython 3.12 on manylinux for machine."""
    interpreter, abi, platform = tag.split("-")
    if (abi, platform) == ("none", "any"):
        return interpreter.startswith("py3") or interpreter == "py2.py3"
    minor = re.fullmatch(r"cp3(\d+)", interpreter)
    # An abi3 wheel names the oldest CPython it runs on.
    python_ok = (interpreter, abi) == ("cp312", "cp312") or (
        abi == "abi3" and minor is not None and int(minor[1]) <= 12
    )
    platform_ok = re.fullmatch(rf"manylinux(_2_\d+|2014|2010|1)_{machine}", platform)
    return python_ok and platform_ok is not None


def test_every_shared_object_is_for_the_zips_machine(built):
    arch, archive_path = built
    number = MACHINES[arch][0]
    with zipfile.ZipFile(archive_path) as archive:
        objects = shared_objects(archive)
        machines = {name: elf_machine(archive.read(name)[:20]) for name in objects}

    assert len(objects) >= 5  # cryptography, cffi, the connector's, ...: a real check
    assert {name for name, found in machines.items() if found != number} == set()
    other = next(m for a, (_, m) in MACHINES.items() if a != arch)
    assert [n for n in objects if other in n] == []
    assert [n for n in objects if ".cpython-" in n and "-312-" not in n] == []


def test_every_wheel_is_tagged_for_cp312_on_the_zips_machine(built):
    arch, archive_path = built
    machine = MACHINES[arch][1]
    with zipfile.ZipFile(archive_path) as archive:
        tags = wheel_tags(archive)

    assert "cryptography-" in " ".join(tags)  # a native wheel is among them
    assert {
        dist: t for dist, t in tags.items() if not t or not any(fits(x, machine) for x in t)
    } == {}


def test_the_tag_check_refuses_the_other_machine_and_python():
    assert fits("cp312-cp312-manylinux_2_17_aarch64", "aarch64")
    assert fits("cp311-abi3-manylinux_2_28_x86_64", "x86_64")
    assert fits("py3-none-any", "x86_64")
    assert not fits("cp312-cp312-manylinux_2_17_x86_64", "aarch64")
    assert not fits("cp313-cp313-manylinux_2_17_x86_64", "x86_64")
    assert not fits("cp312-cp312-musllinux_1_2_x86_64", "x86_64")
    assert not fits("cp312-cp312-macosx_11_0_arm64", "aarch64")
