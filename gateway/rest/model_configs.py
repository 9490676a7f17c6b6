"""3.1 List model configs, 3.2 update one (admin); a config's versions and a rollback (admin)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from db.identity import Caller
from db.services import model_configs
from db.services.pagination import PageRequest
from gateway.rest.requests import json_body, path_param, query, renamed
from gateway.rest.routing import Endpoint, runtime_of
from gateway.rest.schemas import (
    ModelConfigList,
    ModelConfigOut,
    ModelConfigUpdated,
    ModelConfigVersionList,
    PageQuery,
    RollbackModelConfigBody,
    UpdateModelConfigBody,
)
from gateway.rest.shapes import model_config_out, model_config_updated, model_config_version_out


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


async def list_model_config_versions(request: Request, caller: Caller) -> dict[str, Any]:
    model_configs.authorize_history(caller=caller)  # a user learns nothing of the admin input
    params = query(request, PageQuery)
    page = await model_configs.versions(
        caller=caller,
        config_id=path_param(request, "config_id"),
        page=PageRequest(page_size=params.page_size, page_num=params.page_num),
    )
    return {
        "versions": [model_config_version_out(row) for row in page.versions],
        "total": page.total,
    }


async def rollback_model_config(request: Request, caller: Caller) -> dict[str, Any]:
    model_configs.authorize_change(caller=caller)  # a user learns nothing of the admin input
    body = await json_body(request, RollbackModelConfigBody)
    config = await model_configs.rollback(
        caller=caller,
        runtime=runtime_of(request),
        config_id=path_param(request, "config_id"),
        version=body.version,
    )
    return model_config_out(config)


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
    Endpoint(
        "GET",
        "/model-configs/{config_id}/versions",
        list_model_config_versions,
        summary=(
            "A model config's versions, newest first: each change (create, update, rollback) "
            "with its actor, the fields it changed and a snapshot of the config (no secret)"
        ),
        query=PageQuery,
        response=ModelConfigVersionList,
        admin_only=True,
    ),
    Endpoint(
        "POST",
        "/model-configs/{config_id}/rollback",
        rollback_model_config,
        summary=(
            "Give a model config the values of one of its versions again, as a new version "
            "(is_default stays as it is); the next reply in every process uses them"
        ),
        body=RollbackModelConfigBody,
        response=ModelConfigOut,
        admin_only=True,
    ),
]
