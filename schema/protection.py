"""Limits on what one document may ask, and the caches that make validation cheap."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from schema.context import OperationScope


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2_000
    introspection: bool = True


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


def limit_rules(limits: GraphQLLimits) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules of `limits`, beside graphql's own `specified_rules`."""
    rules: tuple[type[ASTValidationRule], ...] = (
        depth_rule(limits.max_depth, None, None),
        alias_rule(limits.max_aliases),
    )
    if not limits.introspection:
        rules += (NoSchemaIntrospectionCustomRule,)
    return rules


def extensions(
    limits: GraphQLLimits, rules: tuple[type[ASTValidationRule], ...]
) -> list[Callable[[], SchemaExtension]]:
    """Factories (never shared instances) in the order they must run; `rules` are
    `limit_rules(limits)`, built once per schema."""
    return [
        OperationScope,
        lambda: _StaticRules(rules),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]
