"""Mermaid flowcharts for the architecture document, written to stay readable where GitHub renders them: a content
column about 900 px wide, into which a wider diagram is scaled down (tests/test_architecture_diagrams.py checks the
generated diagrams against that width and related rules).

Long label lines are wrapped (a node of ``NODE_LINE`` characters is about 240 px wide in Mermaid's default font),
and long identifiers break after a separator, so that the width of a diagram depends on its number of ranks, not
on the length of a bucket or role name.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

#: Characters per line of a node label, and of an edge label.
NODE_LINE = 24
EDGE_LINE = 20
_BREAK_AFTER = re.compile(r"(?<=[-/.=:])")


def node_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def wrap(text: str, width: int) -> str:
    """``text`` with every ``<br/>``-separated line longer than ``width`` broken at spaces, and a word longer than
    ``width`` broken after one of ``- / . = :``."""
    lines = []
    for line in text.split("<br/>"):
        pieces: list[tuple[str, str]] = []  # (glue before, piece)
        for word in line.split(" "):
            parts = _split_word(word, width) if len(word) > width else [word]
            pieces += [(" " if index == 0 else "", part) for index, part in enumerate(parts)]
        current = ""
        for glue, piece in pieces:
            if current and len(current) + len(glue) + len(piece) > width:
                lines.append(current)
                current = piece
            else:
                current = f"{current}{glue}{piece}" if current else piece
        lines.append(current)
    return "<br/>".join(lines)


def _split_word(word: str, width: int) -> list[str]:
    parts, current = [], ""
    for part in _BREAK_AFTER.split(word):
        if current and len(current) + len(part) > width:
            parts.append(current)
            current = part
        else:
            current += part
    return [*parts, current] if current else parts


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def _edge_label(text: str) -> str:
    """Quoted: an unquoted label may read as Mermaid syntax (``<br/>@ main`` as an edge id)."""
    return _label(text.replace("|", ""))


_SHAPES = {"box": ("[", "]"), "round": ("(", ")"), "stadium": ("([", "])"), "db": ("[(", ")]"),
           "hexagon": ("{{", "}}"), "circle": ("((", "))"), "release": ("[/", "/]"), "subroutine": ("[[", "]]")}


class Flowchart:
    """A Mermaid flowchart built line by line; nodes are declared once, where first declared."""

    def __init__(self, direction: str = "LR") -> None:
        self.lines = [f"flowchart {direction}"]
        self.depth = 1
        self.declared: set[str] = set()

    def node(self, identifier: str, label: str, shape: str = "box") -> str:
        if identifier not in self.declared:
            opening, closing = _SHAPES[shape]
            self.lines.append("  " * self.depth + f"{identifier}{opening}{_label(wrap(label, NODE_LINE))}{closing}")
            self.declared.add(identifier)
        return identifier

    def edge(self, source: str, target: str, label: str = "", arrow: str = "-->") -> None:
        text = f"|{_edge_label(wrap(label, EDGE_LINE))}|" if label else ""
        self.lines.append("  " * self.depth + f"{source} {arrow}{text} {target}")

    @contextmanager
    def subgraph(self, identifier: str, title: str, direction: str | None = None):
        self.lines.append("  " * self.depth + f"subgraph {identifier}[{_label(title)}]")
        self.depth += 1
        if direction:
            self.lines.append("  " * self.depth + f"direction {direction}")
        yield
        self.depth -= 1
        self.lines.append("  " * self.depth + "end")

    def render(self) -> list[str]:
        return ["```mermaid", *self.lines, "```"]
