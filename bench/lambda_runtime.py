"""Run the Lambda zip as Lambda does: built for the runtime, unpacked alone, under awslambdaric.

The zip is built with `make lambda-zip` for the runtime's Python, and awslambdaric with
boto3/botocore (what the managed runtime provides) is installed into a folder of its own for
that Python: never the project's venv. The client talks to bench/runtime_api.py's server.
Used by the benchmarks and re-exported for the tests.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.runtime_api import RuntimeApi

ROOT = Path(__file__).resolve().parents[1]
# What the managed runtime has besides the standard library (boto3 brings botocore & co.).
RUNTIME_PINS = ("awslambdaric", "boto3", "botocore")


def runtime_python() -> tuple[str, str]:
    """Return the newest Python 3.12 (else 3.11) found under pyenv or on PATH, and its version."""
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    for version in ("3.12", "3.11"):
        found = [
            p
            for r in roots
            if r
            for p in glob.glob(f"{r}/versions/{version}.*/bin/python{version}")
        ]
        found += [p for d in os.get_exec_path() if os.access(p := f"{d}/python{version}", os.X_OK)]
        if found:
            return sorted(found)[-1], version
    raise RuntimeError("no Python 3.12 (nor 3.11) here: install one, e.g. with pyenv")


def build_zip(out: Path, python: str, version: str, arch: str = "x86_64") -> Path:
    """Build the Lambda zip with the Makefile's target, for arch and the runtime's Python."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["make", "-s", "lambda-zip", f"ARCH={arch}", f"LAMBDA_INTERPRETER={python}"]
    command += [f"LAMBDA_PYTHON={version}", f"LAMBDA_ZIP={out}"]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def unpack(archive: Path, target: Path) -> Path:
    """Unpack the zip into target, which must be empty or missing."""
    target.mkdir(parents=True, exist_ok=True)
    assert not any(target.iterdir()), f"{target} is not empty"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    return target


def runtime_folder(target: Path, python: str) -> Path:
    """Install awslambdaric and boto3/botocore, at the project's pins, for python into target."""
    pins = _pins(ROOT / "requirements-dev.txt") | _pins(ROOT / "requirements.txt")
    wanted = [f"{name}=={pins[name]}" for name in RUNTIME_PINS]
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*command, "--target", str(target), *wanted], check=True)
    return target


def _pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    pairs = (line.split("==") for line in lines if "==" in line)
    return {name.split("[")[0].lower(): version for name, version in pairs}


def start_client(
    path: Sequence[Path],
    python: str,
    api: RuntimeApi,
    env: Mapping[str, str],
    log: Path,
    handler: str = "lambda_handler.handler",
) -> subprocess.Popen[bytes]:
    """Start `python -m awslambdaric HANDLER` in path[0] (the package), as Lambda would.

    Nothing is on the module path but `path`: the unpacked zip, then the runtime's folder.
    """
    package = path[0]
    environ = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": ":".join(map(str, path)),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "userservice",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(package),
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [python, "-m", "awslambdaric", handler],
            cwd=package,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_client(proc: subprocess.Popen[bytes]) -> None:
    """Stop the client with SIGTERM (a non-200 /invocation/next would make it segfault)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
