"""Read documents answered by one compiled statement, with the plans kept in a bounded cache.

A document is parsed and validated once, by the same rules and limits Strawberry applies;
a valid query operation is compiled once per set of `@skip`/`@include` decisions. Per
request only the variables are coerced (graphql-core, as the executor does) and the
parameters bound. Anything else (mutations, subscriptions, invalid documents, fields not
written in `compiler`, arguments the services refuse, an unauthenticated caller) gets
None from `prepare` or `Refused` from `bind`, and Strawberry answers it: Strawberry stays
the source of truth, this is only a faster way to the same bytes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import ASTValidationRule, GraphQLError, GraphQLSchema, OperationType, parse
from strawberry.schema.schema import validate_document

from db.answers import read_text
from db.identity import Caller
from schema.compiled.arguments import VariableCoercion
from schema.compiled.compiler import MARK, Plan, Refused, Unsupported, compile_operation
from schema.compiled.selections import Collector, Operation

logger = logging.getLogger(__name__)

# The most @skip/@include decision sets compiled for one document.
MAX_VARIANTS = 4
# Longer documents are left to Strawberry and never cached: a cache entry is keyed by its
# text, and comments or long strings cost no tokens (GRAPHQL_MAX_TOKENS bounds the rest).
MAX_QUERY_CHARS = 16_384
# asyncpg's max_cacheable_statement_size: the statements it keeps prepared.
MAX_STATEMENT_CHARS = 15 * 1024


@dataclass(slots=True)
class _Document:
    operation: Operation | None  # None: Strawberry answers every request for it
    variables: VariableCoercion | None
    plans: dict[tuple[bool, ...], Plan | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request's plan and its coerced variables, ready to bind."""

    plan: Plan
    variables: Mapping[str, Any]  # coerced


class CompiledReads:
    """The plans of read documents: `prepare` per request, then `answer` per caller."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        validation_rules: tuple[type[ASTValidationRule], ...],
        max_tokens: int,
        cache_size: int,
    ) -> None:
        self.schema = schema
        self.validation_rules = validation_rules
        self.max_tokens = max_tokens
        self.cache_size = cache_size
        self._documents: OrderedDict[tuple[str, str | None], _Document] = OrderedDict()
        self.answered = 0  # requests this path answered (tests and benchmarks read it)

    def prepare(
        self, query: str, operation_name: str | None, variables: Mapping[str, Any]
    ) -> Prepared | None:
        """The plan answering this request, or None when Strawberry must answer it."""
        if len(query) > MAX_QUERY_CHARS:
            return None
        document = self._document(query, operation_name)
        operation = document.operation
        if operation is None or document.variables is None:
            return None
        coerced = document.variables.coerce(variables)
        if coerced is None:
            return None  # Strawberry words the variables' errors
        try:
            decisions = operation.decide(coerced)
        except GraphQLError:
            return None
        if decisions not in document.plans:
            if len(document.plans) >= MAX_VARIANTS:
                return None
            document.plans[decisions] = self._compile(operation, decisions)
        plan = document.plans[decisions]
        return None if plan is None else Prepared(plan, coerced)

    async def answer(self, prepared: Prepared, caller: Caller) -> str | None:
        """The response body, or None when Strawberry must answer: the services refuse
        an argument (Strawberry words the error), or the answer holds MARK."""
        try:
            params = prepared.plan.bind(caller, prepared.variables)
        except Refused:
            return None
        text = await read_text(prepared.plan.sql, params)
        if text is None or MARK in text:
            return None
        self.answered += 1
        return text

    def _document(self, query: str, operation_name: str | None) -> _Document:
        key = (query, operation_name)
        document = self._documents.get(key)
        if document is not None:
            self._documents.move_to_end(key)
            return document
        operation = self._operation(query, operation_name)
        coercion = (
            VariableCoercion(self.schema, operation.definition.variable_definitions or ())
            if operation is not None
            else None
        )
        document = _Document(operation, coercion)
        self._documents[key] = document
        if len(self._documents) > self.cache_size:
            self._documents.popitem(last=False)
        return document

    def _operation(self, query: str, operation_name: str | None) -> Operation | None:
        try:
            parsed = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        if validate_document(self.schema, parsed, self.validation_rules):
            return None
        operation = Operation.of(parsed, operation_name)
        if operation is None or operation.definition.operation is not OperationType.QUERY:
            return None
        return operation

    def _compile(self, operation: Operation, decisions: tuple[bool, ...]) -> Plan | None:
        collector = Collector(self.schema, operation, decisions)
        try:
            plan = compile_operation(self.schema, collector, [operation.definition.selection_set])
        except Unsupported as exc:
            logger.debug("answered by strawberry: the compiled path does not write %s", exc)
            return None
        # asyncpg keeps prepared statements up to this size only: a larger one would be
        # prepared (and planned) again for every request, and would fill memory per plan.
        if len(plan.sql) > MAX_STATEMENT_CHARS:
            logger.debug("answered by strawberry: a statement of %d characters", len(plan.sql))
            return None
        return plan
