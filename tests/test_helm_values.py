"""Helm values layering and rendering (pure Python, no synth)."""

import pytest
import yaml

from platform_config.helm_values import ValuesFileError, merge_values, release_values, values_yaml


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


def test_a_values_file_that_is_not_valid_yaml_is_one_line_naming_file_line_and_problem(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "values.yaml").write_text("replicas: 1\nimage:\n  tag: a\n   pull: Always\n")
    with pytest.raises(ValuesFileError) as refused:
        release_values("demo", "dev", values_dir=tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / 'values.yaml'}:4:")
    assert "not valid YAML: mapping values are not allowed here" in message


def test_a_values_file_that_is_not_a_mapping_is_refused_by_name(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "values-dev.yaml").write_text("- a list\n")
    with pytest.raises(ValuesFileError, match=r"values-dev\.yaml: expected a mapping of values, got list"):
        release_values("demo", "dev", values_dir=tmp_path)
