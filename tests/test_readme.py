"""The README stays true about settings and SQL files."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from userservice.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table_with_its_default():
    rows = dict(re.findall(r"^\| `([A-Z_0-9]+)` \| ([^|]+) \|", README, re.MULTILINE))

    for f in fields(Settings):
        env = f.metadata["env"]
        assert env in rows, env
        documented = rows[env].strip().strip("`")
        expected = (
            "(empty)"
            if f.default == ""
            else str(f.default).lower()
            if isinstance(f.default, bool)
            else f"{f.default:g}"
            if isinstance(f.default, float)
            else str(f.default)
        )
        assert documented == expected, env


def test_every_sql_file_is_in_the_readme():
    sql_dir = Path(__file__).resolve().parents[1] / "sql"

    for path in sql_dir.glob("*.sql"):
        assert f"`{path.name}`" in README, path.name
