"""Space secrets, variables, hardware, sleep time and runtime (hub-api.md §9, §13.1 items 17-23)."""

import datetime

import pytest
from huggingface_hub import SpaceRuntime

from hubtest import WRITE_TOKEN, raw_request

STAGES = {
    "NO_APP_FILE", "CONFIG_ERROR", "BUILDING", "BUILD_ERROR", "RUNNING", "RUNNING_BUILDING",
    "RUNTIME_ERROR", "DELETING", "STOPPED", "PAUSED", "APP_STARTING", "RUNNING_APP_STARTING", "SLEEPING",
}


@pytest.fixture
def space(api, name):
    space = name()
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    return space


def test_space_secrets(api, hub, space):
    assert api.get_space_secrets(space) == {}
    api.add_space_secret(space, "API_KEY", "s3cr3t-value-1", description="the key")
    api.add_space_secret(space, "OTHER", "s3cr3t-value-2")
    secrets = api.get_space_secrets(space)
    assert set(secrets) == {"API_KEY", "OTHER"}
    assert secrets["API_KEY"].key == "API_KEY"
    assert secrets["API_KEY"].description == "the key"
    assert isinstance(secrets["API_KEY"].updated_at, datetime.datetime)
    assert secrets["OTHER"].description is None

    # Write-only: the listing never carries a value.
    raw = raw_request("GET", f"{hub.url}/api/spaces/{space}/secrets", token=WRITE_TOKEN)
    assert raw.status == 200
    assert b"s3cr3t-value" not in raw.body
    assert all("value" not in entry for entry in raw.json().values())

    # Update keeps one entry per key.
    api.add_space_secret(space, "API_KEY", "s3cr3t-value-3", description="rotated")
    secrets = api.get_space_secrets(space)
    assert set(secrets) == {"API_KEY", "OTHER"}
    assert secrets["API_KEY"].description == "rotated"

    api.delete_space_secret(space, "API_KEY")
    assert set(api.get_space_secrets(space)) == {"OTHER"}
    api.delete_space_secret(space, "NEVER_SET")  # deleting a missing key is fine (§9.1)
    assert set(api.get_space_secrets(space)) == {"OTHER"}


def test_space_variables(api, space):
    assert api.get_space_variables(space) == {}
    returned = api.add_space_variable(space, "MODEL_ID", "alice/tiny-bert", description="which model")
    assert set(returned) == {"MODEL_ID"}
    assert returned["MODEL_ID"].value == "alice/tiny-bert"
    returned = api.add_space_variable(space, "THREADS", "4")
    assert {k: v.value for k, v in returned.items()} == {"MODEL_ID": "alice/tiny-bert", "THREADS": "4"}

    variables = api.get_space_variables(space)
    assert {k: v.value for k, v in variables.items()} == {"MODEL_ID": "alice/tiny-bert", "THREADS": "4"}
    assert variables["MODEL_ID"].description == "which model"
    assert isinstance(variables["MODEL_ID"].updated_at, datetime.datetime)

    api.add_space_variable(space, "THREADS", "8")
    assert api.get_space_variables(space)["THREADS"].value == "8"

    remaining = api.delete_space_variable(space, "THREADS")
    assert {k: v.value for k, v in remaining.items()} == {"MODEL_ID": "alice/tiny-bert"}
    assert set(api.get_space_variables(space)) == {"MODEL_ID"}


def test_space_runtime_of_new_space(api, space):
    runtime = api.get_space_runtime(space)
    assert isinstance(runtime, SpaceRuntime)
    assert runtime.stage in STAGES


def test_request_space_hardware(api, space):
    runtime = api.request_space_hardware(space, "t4-small")
    assert runtime.stage in STAGES
    assert runtime.requested_hardware == "t4-small"
    runtime = api.request_space_hardware(space, "a10g-small", sleep_time=3600)
    assert runtime.requested_hardware == "a10g-small"
    assert runtime.sleep_time == 3600
    again = api.get_space_runtime(space)
    assert again.requested_hardware == "a10g-small"
    assert again.sleep_time == 3600
    assert again.raw["gcTimeout"] == 3600


def test_set_space_sleep_time(api, space):
    api.request_space_hardware(space, "t4-medium")
    runtime = api.set_space_sleep_time(space, 7200)
    assert runtime.sleep_time == 7200
    assert runtime.raw["gcTimeout"] == 7200
    again = api.get_space_runtime(space)
    assert again.sleep_time == 7200
    assert again.requested_hardware == "t4-medium"


def test_space_settings_are_per_space(api, name):
    one, two = name("space-one"), name("space-two")
    for space in (one, two):
        api.create_repo(space, repo_type="space", space_sdk="static")
    api.add_space_variable(one, "ONLY_ONE", "1")
    api.add_space_secret(one, "ONLY_ONE", "1")
    api.set_space_sleep_time(one, 600)
    assert api.get_space_variables(two) == {}
    assert api.get_space_secrets(two) == {}
    assert api.get_space_runtime(two).sleep_time != 600
