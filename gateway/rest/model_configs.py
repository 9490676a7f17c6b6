"""3.1 List model configs, 3.2 update one (admin)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from db.identity import Caller
from db.services import model_configs
from gateway.rest.requests import json_body, path_param, renamed
from gateway.rest.routing import Endpoint, runtime_of
from gateway.rest.schemas import ModelConfigList, ModelConfigUpdated, UpdateModelConfigBody
from gateway.rest.shapes import model_config_out, model_config_updated


async def list_model_configs(request: Request, caller: Caller) -> dict[str, Any]:
    configs = await model_configs.list_all(caller=caller)
    return {"models": [model_config_out(config) for config in configs]}


async def update_model_config(request: Request, caller: Caller) -> dict[str, Any]:
    model_configs.authorize_change(caller=caller)  # a user learns nothing of the admin input
    body = await json_body(request, UpdateModelConfigBody)
    with renamed({"changes": "body"}):
        config = await model_configs.update(
            caller=caller,
            runtime=runtime_of(request),
            config_id=path_param(request, "config_id"),
            changes=model_configs.ConfigChanges(**body.changes()),
        )
    return model_config_updated(config)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/model-configs",
        list_model_configs,
        summary="List the available model configs (never a secret)",
        response=ModelConfigList,
        errors=(401, 500),
    ),
    Endpoint(
        "PUT",
        "/model-configs/{config_id}",
        update_model_config,
        summary="Update a model config; the next reply in every process uses the new values",
        body=UpdateModelConfigBody,
        response=ModelConfigUpdated,
        admin_only=True,
    ),
]
