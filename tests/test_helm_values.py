"""Helm values layering and rendering (pure Python, no synth)."""

import yaml

from platform_config.helm_values import merge_values, release_values, values_yaml


def test_maps_merge_key_by_key_lists_replace_and_null_removes():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"keep": True}}
    override = {"a": {"y": [3], "z": 2}, "b": None, "c": "replaced"}
    assert merge_values(base, override) == {"a": {"x": 1, "y": [3], "z": 2}, "c": "replaced"}


def test_release_values_layer_defaults_then_environment_then_computed(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "values.yaml").write_text("replicas: 1\nimage: {tag: a, pull: Always}\nlist: [1]\n")
    (folder / "values-prod.yaml").write_text("replicas: 3\nimage: {tag: b}\n")
    merged = release_values("demo", "prod", {"image": {"tag": "c"}, "list": [2, 3]}, values_dir=tmp_path)
    assert merged == {"replicas": 3, "image": {"tag": "c", "pull": "Always"}, "list": [2, 3]}
    assert release_values("demo", "dev", values_dir=tmp_path)["replicas"] == 1


def test_values_text_is_plain_yaml_that_parses_back_with_multiline_strings_as_blocks():
    values = {"config": {"data": {"a": "line: 1\nother: 2\n"}}, "list": [{"x": 1}], "ref": "${aws_vpc.x.id}"}
    text = values_yaml(values)
    assert yaml.safe_load(text) == values
    assert "a: |\n" in text
    assert "&" not in text and "*" not in text
