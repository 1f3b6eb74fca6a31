"""schema/environment.schema.json: generated from the models, current, and named by every environment file."""

import json

import jsonschema
import pytest
import yaml

from tests_support import ENVIRONMENT_DIR, ENVIRONMENT_NAMES
from tools.environment_schema import MODELINE, SCHEMA_FILE, environment_schema


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def test_the_committed_schema_is_what_the_models_generate_now():
    assert SCHEMA_FILE.read_text() == environment_schema(), "stale: run make schema"


@pytest.mark.parametrize("name", ENVIRONMENT_NAMES)
def test_every_environment_file_names_the_schema_and_passes_it(name, schema):
    path = ENVIRONMENT_DIR / f"{name}.yaml"
    assert path.read_text().splitlines()[0] == MODELINE
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_the_schema_flags_what_an_editor_should_underline(schema):
    data = yaml.safe_load((ENVIRONMENT_DIR / f"{ENVIRONMENT_NAMES[0]}.yaml").read_text())
    misspelt = {**data, "regoin": data["region"]}
    with pytest.raises(jsonschema.ValidationError, match="regoin"):
        jsonschema.validate(misspelt, schema)
    unquoted = {**data, "account_id": 12345678901}
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        jsonschema.validate(unquoted, schema)
