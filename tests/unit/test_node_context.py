"""NodeContext: the collaborators the node's components share, one typed attribute each."""
from __future__ import annotations

import pytest

from cexnode.component import NodeContext
from cexnode.metrics import NodeMetrics, ReadinessRegistry


def test_a_new_context_holds_the_metrics_and_no_other_collaborator_yet():
    metrics = NodeMetrics(node_name="ctx-test")
    ctx = NodeContext(metrics=metrics)
    assert ctx.metrics is metrics
    assert (ctx.readiness, ctx.engine, ctx.sim, ctx.sim_urls, ctx.capture) == (None, None, None, None, None)


def test_a_context_cannot_be_built_without_the_metrics():
    with pytest.raises(TypeError, match="metrics"):
        NodeContext()


def test_a_component_publishes_its_collaborator_under_its_own_name():
    ctx = NodeContext(metrics=NodeMetrics())
    readiness = ReadinessRegistry()
    ctx.readiness = readiness
    ctx.sim_urls = {}
    assert ctx.readiness is readiness and ctx.sim_urls == {}


def test_a_misspelt_collaborator_is_refused_rather_than_published_where_nobody_reads_it():
    ctx = NodeContext(metrics=NodeMetrics())
    with pytest.raises(AttributeError, match="sim_url"):
        ctx.sim_url = {}          # the readers look at sim_urls
    with pytest.raises(AttributeError, match="engin"):
        ctx.engin = object()
    assert ctx.sim_urls is None and ctx.engine is None
