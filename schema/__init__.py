"""The GraphQL door: `build_schema()` over the same service layer REST uses."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError, specified_rules
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema import errors
from schema.compiled.plans import CompiledReads
from schema.mutations import Mutation
from schema.protection import GraphQLLimits, extensions, limit_rules
from schema.queries import Query
from schema.scalars import SCALAR_MAP
from schema.subscriptions import Subscription


class GatewaySchema(strawberry.Schema):
    limits: GraphQLLimits
    # The rule classes of `limits`, built once: Strawberry's validation and the compiled
    # path's use the same ones.
    limit_rules: tuple[type[ASTValidationRule], ...]

    def process_errors(
        self, errors_: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Replaces strawberry's log-everything-with-a-traceback: codes, masking, one log line
        # for what is unexpected (see schema.errors).
        refused = execution_context.pre_execution_errors if execution_context else None
        document = execution_context.graphql_document if execution_context else None
        for error in errors_:
            # strawberry files every result's errors as pre-execution errors, those of a
            # subscription that failed while running included: the document's own errors
            # come before there is a document (parsing) or point into it (validation).
            before = document is None or bool(error.nodes)
            errors.shape(
                error,
                refused_before_execution=before and any(error is known for known in refused or ()),
            )


def build_schema(limits: GraphQLLimits | None = None) -> GatewaySchema:
    limits = limits or GraphQLLimits()
    rules = limit_rules(limits)
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions(limits, rules),
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )
    schema.limits = limits
    schema.limit_rules = rules
    return schema


def build_compiled_reads(schema: GatewaySchema, *, cache_size: int) -> CompiledReads:
    """The compiled path of `schema`'s read documents, validated as Strawberry validates
    them (graphql's rules, the schema's limits, the token limit)."""
    return CompiledReads(
        schema._schema,
        validation_rules=(*specified_rules, *schema.limit_rules),
        max_tokens=schema.limits.max_tokens,
        cache_size=cache_size,
    )


def sdl(**kwargs: Any) -> str:
    """The schema in SDL, as committed in schema.graphql."""
    return build_schema(**kwargs).as_str() + "\n"


__all__ = [
    "CompiledReads",
    "GatewaySchema",
    "GraphQLLimits",
    "build_compiled_reads",
    "build_schema",
    "sdl",
]
