"""The tag-writing tool: it writes the tag of each image the workflow pushed, keeps the other entries, and refuses
what Argo CD could not use, naming the file and what is allowed."""

import json

import pytest
import yaml

from tools.image_tags.__main__ import main
from tools.image_tags.tags_file import TagsFileError, read_tags, set_tags


def test_new_tags_replace_the_pushed_images_tags_and_keep_the_others(tmp_path):
    tags_file = tmp_path / "environments" / "dev" / "image-tags.yaml"
    assert set_tags(tags_file, {"agents/crewai": "0.1.0", "agents/autogen": "0.1.0"}) == [
        "agents/autogen", "agents/crewai"]
    assert set_tags(tags_file, {"agents/crewai": "0.2.0"}) == ["agents/crewai"]
    assert set_tags(tags_file, {"agents/crewai": "0.2.0"}) == []
    assert yaml.safe_load(tags_file.read_text()) == {
        "imageTags": {"agents/autogen": "0.1.0", "agents/crewai": "0.2.0"}}


def test_the_command_writes_the_image_workflows_matrix(tmp_path, capsys):
    matrix = {"include": [{"image": "agents/langgraph", "tag": "0.1.0"},
                          {"image": "inference/vllm", "tag": "0.33.0-1"}]}
    tags_file = tmp_path / "image-tags.yaml"
    assert main(["set", "--file", str(tags_file), "--matrix", json.dumps(matrix)]) == 0
    assert capsys.readouterr().out.split() == ["agents/langgraph", "inference/vllm"]
    assert read_tags(tags_file) == {"agents/langgraph": "0.1.0", "inference/vllm": "0.33.0-1"}
    assert main(["set", "--file", str(tags_file), "--matrix", "[]"]) == 1
    assert "expected the image matrix JSON" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "wanted", "message"), [
    (None, {"agents/crewai": "v1:latest"}, "is not an image tag"),
    (None, {"team/notebook": "v1"}, "team/notebook are not the platform's (allowed: agents/crewai"),
    ("imageTags: {team/notebook: v1}\n", {"agents/crewai": "0.1.0"}, "unknown repositories team/notebook"),
    ("image: {tag: v1}\n", {"agents/crewai": "0.1.0"}, "expected only a map 'imageTags:"),
])
def test_bad_input_is_refused_and_the_file_left_as_it_was(tmp_path, content, wanted, message):
    tags_file = tmp_path / "image-tags.yaml"
    if content is not None:
        tags_file.write_text(content)
    with pytest.raises(TagsFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        set_tags(tags_file, wanted)
    assert (tags_file.read_text() if tags_file.exists() else None) == content
