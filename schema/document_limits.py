"""The depth and alias limits as validation rules that read each fragment once.

Strawberry's own rules (QueryDepthLimiter, MaxAliasesLimiter) walk a fragment again at
every spread of it: `fragment F0 { ...F1 ...F1 ... }`, `fragment F1 { ...F2 ...F2 ... }`
takes time exponential in the document's length, and validation runs before anyone is
authenticated, so one short anonymous request could hold a worker for minutes. These
rules give the same answers (the same messages, from the same counts) with each
fragment's depth and alias count worked out once per document.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)


class _Fragments:
    """A document's fragments, with a measure of each worked out once."""

    def __init__(self, context: ValidationContext) -> None:
        self.definitions = {
            definition.name.value: definition
            for definition in context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.depths: dict[str, int] = {}
        self.aliases: dict[str, int] = {}
        self.visiting: set[str] = set()  # cycles are NoFragmentCycles' to report

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """The most levels of fields below and including this selection set's own."""
        deepest = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                # Introspection fields (`__schema`, `__typename`) count, but not below them.
                below = 0 if node.name.value.startswith("__") else self.depth(node.selection_set)
                deepest = max(deepest, 1 + below)
            elif isinstance(node, InlineFragmentNode):
                deepest = max(deepest, self.depth(node.selection_set))
            elif isinstance(node, FragmentSpreadNode):
                deepest = max(deepest, self._measured(node.name.value, self.depths, self.depth))
        return deepest

    def alias_count(self, selection_set: SelectionSetNode | None) -> int:
        """Aliased fields in this selection set, fragments counted at each spread."""
        count = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                count += (node.alias is not None) + self.alias_count(node.selection_set)
            elif isinstance(node, InlineFragmentNode):
                count += self.alias_count(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                count += self._measured(node.name.value, self.aliases, self.alias_count)
        return count

    def _measured(self, name: str, known: dict[str, int], measure: Any) -> int:
        if name not in known:
            fragment = self.definitions.get(name)
            if fragment is None or name in self.visiting:
                return 0
            self.visiting.add(name)
            try:
                known[name] = measure(fragment.selection_set)
            finally:
                self.visiting.discard(name)
        return known[name]


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """Refuse an operation whose fields nest more than `max_depth` levels below its top
    fields (Strawberry's QueryDepthLimiter's rule and message)."""

    class DepthRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = _Fragments(context)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            if self.fragments.depth(node.selection_set) - 1 > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(
                    GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", node)
                )

    return DepthRule


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    """Refuse a document with more than `max_aliases` aliased fields in its operations,
    fragments counted at each spread (Strawberry's MaxAliasesLimiter's rule and message)."""

    class AliasRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = _Fragments(context)
            total = sum(
                fragments.alias_count(definition.selection_set)
                for definition in context.document.definitions
                if isinstance(definition, OperationDefinitionNode)
            )
            if total > max_aliases:
                self.report_error(GraphQLError(f"{total} aliases found. Allowed: {max_aliases}"))

    return AliasRule
