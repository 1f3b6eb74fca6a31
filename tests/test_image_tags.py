"""The tag-writing tool: it writes the new tag for the images a commit builds, keeps the other entries, and refuses
what Argo CD could not use, naming the file and what is allowed."""

import pytest
import yaml

from tools.image_tags.__main__ import main
from tools.image_tags.tags_file import TagsFileError, read_tags, set_tags


def test_a_new_tag_replaces_the_built_images_tags_and_keeps_the_others(tmp_path):
    tags_file = tmp_path / "environments" / "dev" / "image-tags.yaml"
    assert set_tags(tags_file, ["agents/crewai", "agents/autogen"], "1111111") == ["agents/autogen", "agents/crewai"]
    assert set_tags(tags_file, ["agents/crewai"], "2222222") == ["agents/crewai"]
    assert set_tags(tags_file, ["agents/crewai"], "2222222") == []
    assert yaml.safe_load(tags_file.read_text()) == {
        "imageTags": {"agents/autogen": "1111111", "agents/crewai": "2222222"}}


def test_the_command_tags_the_images_with_a_dockerfile(tmp_path, capsys):
    for image in ("agents/langgraph", "inference/vllm"):
        (tmp_path / "images" / image).mkdir(parents=True)
        (tmp_path / "images" / image / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images" / "agents" / "crewai").mkdir()   # no Dockerfile yet: not built, not tagged
    tags_file = tmp_path / "image-tags.yaml"
    assert main(["set", "--file", str(tags_file), "--tag", "abc1234", "--images-root", str(tmp_path / "images")]) == 0
    assert capsys.readouterr().out.split() == ["agents/langgraph", "inference/vllm"]
    assert read_tags(tags_file) == {"agents/langgraph": "abc1234", "inference/vllm": "abc1234"}


@pytest.mark.parametrize(("content", "images", "tag", "message"), [
    (None, ["agents/crewai"], "v1:latest", "is not an image tag"),
    (None, ["team/notebook"], "abc1234", "team/notebook are not the platform's (allowed: agents/crewai"),
    ("imageTags: {team/notebook: v1}\n", ["agents/crewai"], "abc1234", "unknown repositories team/notebook"),
    ("image: {tag: v1}\n", ["agents/crewai"], "abc1234", "expected only a map 'imageTags:"),
])
def test_bad_input_is_refused_and_the_file_left_as_it_was(tmp_path, content, images, tag, message):
    tags_file = tmp_path / "image-tags.yaml"
    if content is not None:
        tags_file.write_text(content)
    with pytest.raises(TagsFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        set_tags(tags_file, images, tag)
    assert (tags_file.read_text() if tags_file.exists() else None) == content
