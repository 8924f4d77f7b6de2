"""Hold the figures of a run and write them to docs/PERFORMANCE.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Goal:
    """A goal from the issue and whether this run met it."""

    text: str
    measured: str
    met: bool


@dataclass
class Section:
    """One figure: a table of measurements, its goals and the commands behind it."""

    title: str
    intro: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """Render the section as Markdown."""
        lines = [f"## {self.title}", "", self.intro, ""]
        lines += [_row(self.header), _row(tuple("---" for _ in self.header))]
        lines += [_row(row) for row in self.rows]
        if self.goals:
            lines += ["", "| goal | measured | result |", "|---|---|---|"]
            lines += [
                _row((g.text, g.measured, "met" if g.met else "**missed**")) for g in self.goals
            ]
        if self.notes:
            lines += ["", *self.notes]
        lines += ["", "Commands:", "", "```sh", *self.commands, "```", ""]
        return "\n".join(lines)


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def write(path: Path, head: str, sections: list[Section], tail: str) -> None:
    """Write the report: the head, a summary of goals, every section, then the tail."""
    summary = ["| figure | goal | measured | result |", "|---|---|---|---|"]
    for section in sections:
        for goal in section.goals:
            result = "met" if goal.met else "**missed**"
            summary.append(_row((section.title, goal.text, goal.measured, result)))
    body = "\n".join([head, "## Goals", "", *summary, ""] + [s.markdown() for s in sections])
    path.write_text(body + "\n" + tail, encoding="utf-8")
