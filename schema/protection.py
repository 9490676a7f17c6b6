"""Limits on what one document may ask, and the caches that make validation cheap."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from db.errors import ServiceError
from schema.context import OperationScope
from schema.cost import cost_rule
from schema.document_limits import alias_rule, depth_rule


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2_000
    max_cost: int = 50_000
    # True: everyone may introspect the schema; "admins": admins only (production).
    introspection: bool | Literal["admins"] = True


class _StaticRules(SchemaExtension):
    # strawberry's limiter extensions build a new rule class per instance, and extensions
    # are instantiated per operation: ValidationCache (keyed by the rule classes) would
    # never hit. These rule classes are built once per schema instead.
    def __init__(self, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        self.execution_context.validation_rules = (
            *self.execution_context.validation_rules,
            *self.rules,
        )
        yield


class _IntrospectionForAdmins(SchemaExtension):
    """A document that introspects the schema validates only for an admin caller.

    The caller is looked up only for such documents (the same lookup the operation's
    resolvers would make); without credentials it is refused like any non-admin. The two
    rule sets are two keys of ValidationCache, so validation stays cached for both.
    """

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        if _introspects(context.query or "") and not await _is_admin(context.context):
            context.validation_rules = (
                *context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield


def _introspects(query: str) -> bool:
    # A cheap pre-check; the rule itself decides (a name in a string literal is not one).
    return "__schema" in query or "__type" in query.replace("__typename", "")


async def _is_admin(context: object) -> bool:
    caller = getattr(context, "caller", None)
    if caller is None:
        return False
    try:
        return bool((await caller()).is_admin)
    except ServiceError:  # not signed in: not an admin
        return False


def limit_rules(limits: GraphQLLimits) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules of `limits`, beside graphql's own `specified_rules`."""
    rules: tuple[type[ASTValidationRule], ...] = (
        depth_rule(limits.max_depth),
        alias_rule(limits.max_aliases),
        cost_rule(limits.max_cost),
    )
    if limits.introspection is False:
        rules += (NoSchemaIntrospectionCustomRule,)
    return rules


def extensions(
    limits: GraphQLLimits, rules: tuple[type[ASTValidationRule], ...]
) -> list[Callable[[], SchemaExtension]]:
    """Factories (never shared instances) in the order they must run; `rules` are
    `limit_rules(limits)`, built once per schema."""
    per_caller = limits.introspection == "admins"
    return [
        OperationScope,
        lambda: _StaticRules(rules),
        *([_IntrospectionForAdmins] if per_caller else []),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]
