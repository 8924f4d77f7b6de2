"""Install what the benchmark needs: wrk (apt) and the pins in bench/requirements.txt (.venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


def install() -> None:
    """Make sure wrk is on PATH and the bench-only packages are in this interpreter's venv."""
    if shutil.which("wrk") is None:
        _apt_install("wrk")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )


def _apt_install(package: str) -> None:
    """Install a Debian package, refreshing the package lists only if the first try fails."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    install = [*sudo, "apt-get", "install", "-y", package]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], check=True)
        subprocess.run(install, check=True)
