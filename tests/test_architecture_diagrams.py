"""The Mermaid diagrams of docs/architecture.md stay readable where reviewers read them: GitHub renders a diagram into
a content column about 900 px wide and scales a wider one down until its text is too small to read.

The rules are checked on the generated text with the layout estimate of tests/mermaid_layout.py (Mermaid's dagre
renderer, its default spacing and font): no browser needed. tests/fixtures/architecture/unreadable.md holds diagrams
an earlier generator wrote, each breaking some of the rules: the rules must reject them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mermaid_layout import Flowchart, flowcharts, forced_crossings, levels
from tools.report.architecture import render_architecture
from tools.report.outdir import load_manifest

#: GitHub's Markdown column at its default layout (px): a wider diagram is scaled down.
GITHUB_CONTENT_WIDTH = 900
#: A diagram with more nodes is a catalogue, not a drawing: split it or make it a table.
MAX_NODES = 25
#: Nodes on one rank (one column of an LR chart, one row of a TB chart).
MAX_NODES_PER_RANK = 15
UNREADABLE = Path(__file__).parent / "fixtures" / "architecture" / "unreadable.md"


@pytest.fixture(scope="module")
def charts(environments, synth_outdir, stacks) -> list[Flowchart]:
    document = render_architecture(list(environments.values()), load_manifest(synth_outdir), stacks)
    found = flowcharts(document)
    assert found, "the document has no Mermaid diagram"
    return found


def too_wide(chart: Flowchart) -> list[str]:
    width = levels(chart)[0].size[0]
    return [f"about {width:.0f} px wide (GitHub shows {GITHUB_CONTENT_WIDTH})"] \
        if width > GITHUB_CONTENT_WIDTH else []


def too_many_nodes(chart: Flowchart) -> list[str]:
    problems = [f"{len(chart.nodes)} nodes (at most {MAX_NODES})"] if len(chart.nodes) > MAX_NODES else []
    for level in levels(chart):
        for rank, members in sorted(level.rank_members().items()):
            if len(members) > MAX_NODES_PER_RANK:
                problems.append(f"{len(members)} nodes on rank {rank} (at most {MAX_NODES_PER_RANK})")
    return problems


def edges_through_other_ranks(chart: Flowchart) -> list[str]:
    """An edge that skips a rank is routed through it, past (and often across) the nodes there."""
    return [f"{e.source} -> {e.target} passes {level.ranks[e.target] - level.ranks[e.source] - 1} rank(s)"
            for level in levels(chart) for e in level.edges
            if level.ranks[e.target] - level.ranks[e.source] > 1]


def edges_across_nested_subgraphs(chart: Flowchart) -> list[str]:
    """An edge may leave its source's subgraph and enter its target's, one border on each side: one that crosses
    more is routed around and through unrelated subgraphs."""
    problems = []
    for edge in chart.edges:
        source, target = chart.ancestors(edge.source), chart.ancestors(edge.target)
        shared = [s for s in source if s in target]
        left = len(source) - len(shared)
        entered = len(target) - len(shared)
        if left > 1 or entered > 1:
            problems.append(f"{edge.source} -> {edge.target} leaves {left} and enters {entered} subgraph(s)")
    return problems


def crossings(chart: Flowchart) -> list[str]:
    """Edges between two ranks that cannot all be drawn without crossing: where edges cross, a reader follows the
    wrong one (a store seems to be used by a node next to its real user)."""
    return [f"ranks {rank}-{rank + 1}: " + ", ".join(f"{e.source}->{e.target}" for e in between)
            for level in levels(chart) for rank, between in forced_crossings(level)]


RULES = (too_wide, too_many_nodes, edges_through_other_ranks, edges_across_nested_subgraphs, crossings)


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__ for r in RULES])
def test_every_diagram_of_the_architecture_document_keeps_the_rule(charts, rule):
    problems = {chart.title: found for chart in charts if (found := rule(chart))}
    assert not problems, "\n".join(f"{title}: {'; '.join(found)}" for title, found in problems.items())


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__ for r in RULES])
def test_the_rule_rejects_the_unreadable_diagrams_of_an_earlier_generator(rule):
    charts = flowcharts(UNREADABLE.read_text())
    assert any(rule(chart) for chart in charts), f"{rule.__name__} finds nothing in {UNREADABLE.name}"

