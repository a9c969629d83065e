"""The figures of one run: printed as a rich table, written as JSON, same numbers."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

NOT_MEASURED = "not measured"


@dataclass
class Figure:
    """One line of the table. ``value`` is a number in ``unit`` or a word (why there is
    no number); ``target`` says what good looks like and ``ok`` whether it was met."""

    section: str
    name: str
    value: float | int | str | None
    unit: str = ""
    note: str = ""
    target: str | None = None
    ok: bool | None = None


@dataclass
class Report:
    meta: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # section -> raw detail for the JSON
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # extra printed tables

    def add(self, section: str, name: str, value: float | int | str | None, unit: str = "",
            note: str = "", target: str | None = None, ok: bool | None = None) -> Figure:
        fig = Figure(section, name, _clean(value), unit, note, target, ok)
        self.figures.append(fig)
        return fig

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "figures": [asdict(f) for f in self.figures],
            "tables": self.tables,
            "detail": self.data,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False, default=str) + "\n")

    def render(self, console: Console) -> None:
        table = Table(title=_title(self.meta), show_lines=False, title_justify="left")
        table.add_column("section", style="bold")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_column("target")
        table.add_column("notes", overflow="fold")
        last = None
        for f in self.figures:
            if last is not None and f.section != last:
                table.add_section()
            table.add_row(f.section if f.section != last else "", f.name, format_value(f),
                          _target(f), f.note)
            last = f.section
        console.print(table)
        for title, extra in self.tables.items():
            t = Table(title=title, title_justify="left")
            for i, col in enumerate(extra["columns"]):
                t.add_column(col, justify="left" if i == 0 else "right")
            for row in extra["rows"]:
                if row is None:
                    t.add_section()
                else:
                    t.add_row(*[_cell(v) for v in row])
            console.print(t)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _title(meta: dict[str, Any]) -> str:
    mode = meta.get("mode", "?")
    return (f"batchplane benchmarks ({mode}, {meta.get('started', '')}, "
            f"{meta.get('cpus', '?')} CPUs, load {meta.get('loadavg_start', '?')})")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:  # noqa: PLR2004 - display: the digits a number is shown with, by its size
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return "" if value is None else str(value)


def format_value(f: Figure) -> str:
    v = f.value
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if f.unit == "$":
        return f"${v:,.2f}"
    if isinstance(v, float):
        text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"  # noqa: PLR2004 - display: the digits a number is shown with, by its size
    else:
        text = f"{v:,}"
    return f"{text} {f.unit}".strip()


def _target(f: Figure) -> str:
    if f.target is None:
        return ""
    mark = "" if f.ok is None else (" [green]met[/green]" if f.ok else " [red]missed[/red]")
    return f"{f.target}{mark}"
