"""The layers of an environment come from one list (platform_config/layers.py), which the synth and the gate share."""

from __future__ import annotations

import json

from platform_config.layers import Layer, expected_stacks, layers_of


def test_an_environment_without_delivery_settings_has_no_delivery_layer(environments):
    env = next(iter(environments.values()))
    without = env.model_copy(update={"delivery": None})
    assert Layer.DELIVERY not in layers_of(without)
    assert set(layers_of(without)) == set(Layer) - {Layer.DELIVERY}


def test_the_synth_builds_exactly_the_stacks_the_layer_list_expects(synth_outdir, environments):
    manifest = json.loads((synth_outdir / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == sorted(expected_stacks(list(environments.values())))
