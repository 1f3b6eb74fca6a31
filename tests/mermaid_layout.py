"""Reads the Mermaid flowcharts of a Markdown document and estimates how Mermaid lays them out, so tests can state
readability rules on the generated text without a browser.

The estimate follows Mermaid's dagre renderer (mermaid 11, ``rendering-util/layout-algorithms/dagre``):

- nodes sit on ranks along the chart's direction (LR: columns, TB: rows); a node's rank is its longest path from a
  node without incoming edges, a source moved next to its nearest successor, as dagre's ranking keeps edges short;
  an edge that skips a rank is drawn through the ranks in between;
- dagre doubles every edge's length and halves the rank spacing to make room for edge labels: between two ranks
  lies a label rank as wide as the widest label there, plus the rank spacing (50 px; 25 px more in each level of
  subgraph laid out on its own);
- a subgraph that no edge crosses is laid out on its own, in its ``direction`` or else the flip of its parent's
  (LR -> TB, TB -> LR), and then placed as one node; a subgraph that edges cross is transparent: its nodes take
  part in the parent's ranks, and its border adds about ``CLUSTER_PADDING`` on each side along the ranks, taken
  partly from the rank spacing;
- node sizes are the text plus Mermaid's padding for the shape, text at 8 px per character and 24 px per line
  (16 px trebuchet ms, Mermaid's default: wide letters run over, narrow ones under).

Calibrated against Mermaid 11.12 rendering the generated diagrams in jsdom with text measured the same way: the
estimate is within about 10 % of that layout. Real fonts add their own error: keep diagrams inside the limits with
room to spare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CHAR_WIDTH = 8.0
LINE_HEIGHT = 24.0
NODE_SPACING = 50.0
RANK_SPACING = 50.0
CLUSTER_MARGIN = 8.0
CLUSTER_PADDING = 60.0
#: The least room between two ranks whose subgraph borders meet.
MIN_GAP = 13.0
#: Width a shape adds to its text, and the share of its height it adds (slanted sides).
SHAPE_PADDING = {"box": (60.0, 0.0), "round": (30.0, 0.0), "stadium": (25.0, 0.0), "db": (15.0, 0.0),
                 "hexagon": (15.0, 0.5), "release": (15.0, 1.0), "subroutine": (31.0, 0.0), "circle": (15.0, 0.0)}
#: Height a node adds to its lines.
NODE_VERTICAL_PADDING = 30.0

_SHAPES = (("([", "])", "stadium"), ("[(", ")]", "db"), ("{{", "}}", "hexagon"), ("((", "))", "circle"),
           ("[/", "/]", "release"), ("[[", "]]", "subroutine"), ("[", "]", "box"), ("(", ")", "round"))
_NODE = re.compile(r"^([A-Za-z0-9_]+)(\(\[|\[\(|\{\{|\(\(|\[/|\[\[|\[|\()\"(.*)\"(\]\)|\)\]|\}\}|\)\)|/\]|\]\]|\]|\))$")
_EDGE = re.compile(r"^([A-Za-z0-9_]+)\s+(<-->|-->|-\.->|==>|---)(?:\|\"?([^|\"]*)\"?\|)?\s+([A-Za-z0-9_]+)$")
_SUBGRAPH = re.compile(r'^subgraph\s+([A-Za-z0-9_]+)(?:\["(.*)"\])?$')


@dataclass
class Node:
    identifier: str
    label: str
    shape: str
    parent: str | None

    @property
    def lines(self) -> list[str]:
        return text_lines(self.label)

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) in px."""
        text = max(len(line) for line in self.lines) * CHAR_WIDTH
        height = len(self.lines) * LINE_HEIGHT + NODE_VERTICAL_PADDING
        padding, slant = SHAPE_PADDING[self.shape]
        width = text + padding + slant * height
        if self.shape == "circle":
            width = height = max(width, height)
        return width, height


@dataclass
class Subgraph:
    identifier: str
    title: str
    parent: str | None
    direction: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


@dataclass
class Flowchart:
    direction: str
    nodes: dict[str, Node] = field(default_factory=dict)
    subgraphs: dict[str, Subgraph] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    title: str = ""  #: the Markdown heading above the diagram

    def ancestors(self, identifier: str) -> list[str]:
        """The subgraphs holding a node or subgraph, innermost first."""
        found = []
        parent = (self.nodes.get(identifier) or self.subgraphs.get(identifier)).parent
        while parent is not None:
            found.append(parent)
            parent = self.subgraphs[parent].parent
        return found

    def descendants(self, subgraph: str) -> set[str]:
        return {n for n in self.nodes if subgraph in self.ancestors(n)}


def text_lines(label: str) -> list[str]:
    return [re.sub(r"#quot;", '"', line) for line in label.split("<br/>")]


def parse(block: str, title: str = "") -> Flowchart:
    """One ```mermaid block (without the fences), as written by tools/report/architecture.py."""
    lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
    header = lines[0].split()
    assert header[0] == "flowchart", f"not a flowchart: {lines[0]}"
    chart = Flowchart(header[1], title=title)
    stack: list[str] = []
    for line in lines[1:]:
        parent = stack[-1] if stack else None
        if match := _SUBGRAPH.match(line):
            chart.subgraphs[match.group(1)] = Subgraph(match.group(1), match.group(2) or match.group(1), parent)
            stack.append(match.group(1))
        elif line == "end":
            stack.pop()
        elif line.startswith("direction "):
            chart.subgraphs[parent].direction = line.split()[1]
        elif match := _EDGE.match(line):
            source, _, label, target = match.groups()
            for end in (source, target):
                chart.nodes.setdefault(end, Node(end, end, "box", parent))
            chart.edges.append(Edge(source, target, label or ""))
        elif match := _NODE.match(line):
            shape = next(name for opening, closing, name in _SHAPES
                         if match.group(2) == opening and match.group(4) == closing)
            chart.nodes[match.group(1)] = Node(match.group(1), match.group(3), shape, parent)
        else:
            raise AssertionError(f"line not understood: {line}")
    assert not stack, f"unclosed subgraph {stack}"
    return chart


def flowcharts(document: str) -> list[Flowchart]:
    """Every ```mermaid block of a Markdown document, each titled by the headings above it (``prod / Network``)."""
    charts = []
    headings: dict[int, str] = {}
    for match in re.finditer(r"^(#{1,4}) ([^\n]+)$|^```mermaid\n(.*?)^```$", document, re.M | re.S):
        if match.group(1):
            level = len(match.group(1))
            headings = {k: v for k, v in headings.items() if k < level}
            headings[level] = match.group(2)
        else:
            charts.append(parse(match.group(3), " / ".join(headings[k] for k in sorted(headings) if k > 1)))
    return charts


# --- the layout estimate ---------------------------------------------------------------------------------------

@dataclass
class Level:
    """One graph dagre lays out: its members (nodes, and extracted subgraphs as single nodes) and their ranks."""

    direction: str
    sizes: dict[str, tuple[float, float]]  #: member -> (width, height)
    edges: list[Edge]
    ranks: dict[str, int]
    inner: dict[str, Level]  #: extracted subgraph -> its own layout
    depths: dict[str, int]  #: member -> how many transparent subgraphs hold it
    rank_spacing: float = RANK_SPACING

    def rank_members(self) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for member, rank in self.ranks.items():
            found.setdefault(rank, []).append(member)
        return found

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) in px of the whole level."""
        across_index, along_index = (1, 0) if self.direction in ("LR", "RL") else (0, 1)
        ranks = self.rank_members()
        if not ranks:
            return 0.0, 0.0
        top = max(ranks)
        padding = {r: CLUSTER_PADDING * max(self.depths[m] for m in ranks[r]) if r in ranks else 0.0
                   for r in range(top + 1)}
        along = sum(max(self.sizes[m][along_index] + 2 * CLUSTER_PADDING * self.depths[m] for m in ranks[r])
                    for r in ranks)
        for gap in range(top):
            labels = [_label_size(e.label)[along_index] for e in self.edges
                      if e.label and self.ranks[e.source] <= gap < self.ranks[e.target]]
            overlap = min(padding[gap], self.rank_spacing / 2) + min(padding[gap + 1], self.rank_spacing / 2)
            along += max(MIN_GAP, self.rank_spacing + max(labels, default=0.0) - overlap)
        across = 0.0
        for rank in range(top + 1):
            sizes = [self.sizes[m][across_index] for m in ranks.get(rank, [])]
            # an edge that passes this rank (or the label rank after it) takes a slot of its own
            passing = [e for e in self.edges if self.ranks[e.source] < rank < self.ranks[e.target]]
            labels = [_label_size(e.label)[across_index] for e in self.edges
                      if e.label and self.ranks[e.source] <= rank < self.ranks[e.target]]
            across = max(across, sum(sizes) + NODE_SPACING * max(len(sizes) + len(passing) - 1, 0),
                         sum(labels) + NODE_SPACING * max(len(labels) - 1, 0))
        width, height = (along, across) if along_index == 0 else (across, along)
        return width + 2 * CLUSTER_MARGIN, height + 2 * CLUSTER_MARGIN


def _label_size(label: str) -> tuple[float, float]:
    lines = text_lines(label)
    return max(len(line) for line in lines) * CHAR_WIDTH + 8, len(lines) * LINE_HEIGHT


def _flip(direction: str) -> str:
    return "LR" if direction in ("TB", "TD") else "TB"


def layout(chart: Flowchart, subgraph: str | None = None, direction: str | None = None,
           rank_spacing: float = RANK_SPACING) -> Level:
    """The estimated layout of the chart (``subgraph`` None) or of one extracted subgraph."""
    direction = direction or chart.direction
    # every subgraph below this one, outermost first: one inside a transparent subgraph is extracted here too
    below = sorted((s for s in chart.subgraphs.values()
                    if subgraph is None or subgraph in chart.ancestors(s.identifier)),
                   key=lambda s: len(chart.ancestors(s.identifier)))
    extracted: dict[str, Level] = {}
    member_of: dict[str, str] = {}
    for child in below:
        if any(holder in extracted for holder in chart.ancestors(child.identifier)):
            continue
        inside = chart.descendants(child.identifier)
        crossed = any((e.source in inside) != (e.target in inside) for e in chart.edges)
        if inside and not crossed:
            extracted[child.identifier] = layout(chart, child.identifier, child.direction or _flip(direction),
                                                 rank_spacing + 25)
            member_of.update(dict.fromkeys(inside, child.identifier))
    sizes: dict[str, tuple[float, float]] = {}
    for node in chart.nodes.values():
        holders = chart.ancestors(node.identifier)
        if node.identifier in member_of or (subgraph is not None and subgraph not in holders):
            continue
        sizes[node.identifier] = node.size
    for identifier, level in extracted.items():
        width, height = level.size
        title = len(chart.subgraphs[identifier].title) * CHAR_WIDTH + 2 * CLUSTER_MARGIN
        sizes[identifier] = (max(width, title) + 2 * CLUSTER_MARGIN, height + LINE_HEIGHT + 2 * CLUSTER_MARGIN)
    edges = [e for e in chart.edges if e.source in sizes and e.target in sizes]

    def depth(member: str) -> int:
        holders = chart.ancestors(member)
        holders = holders[:holders.index(subgraph)] if subgraph in holders else holders
        return sum(1 for holder in holders if holder not in extracted)
    return Level(direction, sizes, edges, _longest_path_ranks(list(sizes), edges), extracted,
                 {member: depth(member) for member in sizes}, rank_spacing)


def _longest_path_ranks(members: list[str], edges: list[Edge]) -> dict[str, int]:
    """Each member's longest path from a member without incoming edges; then each such member moves next to its
    nearest successor, as dagre's network simplex ranking (which keeps edges short) would place it."""
    incoming: dict[str, list[str]] = {m: [] for m in members}
    outgoing: dict[str, list[str]] = {m: [] for m in members}
    for edge in edges:
        if edge.source != edge.target:
            incoming[edge.target].append(edge.source)
            outgoing[edge.source].append(edge.target)
    ranks: dict[str, int] = {}
    visiting: set[str] = set()

    def rank(member: str) -> int:
        if member in ranks:
            return ranks[member]
        if member in visiting:  # a cycle: dagre reverses one edge of it
            return -1
        visiting.add(member)
        ranks[member] = max((rank(source) + 1 for source in incoming[member]), default=0)
        visiting.discard(member)
        return ranks[member]
    for member in members:
        rank(member)
    for member in members:
        if not incoming[member] and outgoing[member]:
            ranks[member] = min(ranks[target] for target in outgoing[member]) - 1
    return ranks


def levels(chart: Flowchart) -> list[Level]:
    """The chart's layout and every extracted subgraph's, outermost first."""
    found = [layout(chart)]
    for level in found:
        found.extend(level.inner.values())
    return found


def forced_crossings(level: Level) -> list[tuple[int, list[Edge]]]:
    """Pairs of adjacent ranks whose edges cannot be drawn without crossing: two layers can be drawn without
    crossings exactly when their edges form a forest of caterpillars (trees that are a path once their leaves are
    removed). Returns (first rank, the edges between the two ranks) per such pair."""
    found = []
    for rank in sorted(set(level.ranks.values())):
        between = [e for e in level.edges if level.ranks[e.source] == rank and level.ranks[e.target] == rank + 1]
        links = {frozenset((e.source, e.target)) for e in between}
        neighbours: dict[str, set[str]] = {}
        for link in links:
            a, b = tuple(link)
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
        forest = len(links) == len(neighbours) - _components(neighbours)
        spine = {n: {m for m in others if len(neighbours[m]) > 1} for n, others in neighbours.items()
                 if len(others) > 1}
        if not forest or any(len(others) > 2 for others in spine.values()):
            found.append((rank, between))
    return found


def _components(neighbours: dict[str, set[str]]) -> int:
    seen: set[str] = set()
    count = 0
    for start in neighbours:
        if start in seen:
            continue
        count += 1
        todo = [start]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(neighbours[node] - seen)
    return count
