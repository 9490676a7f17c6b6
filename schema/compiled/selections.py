"""Which fields a selection set asks for, merged as GraphQL execution merges them.

The compiled path must build the same answer as graphql-core's executor: response keys in
the order they first appear, fragments and inline fragments expanded where they stand,
fields sharing a response key merged (their sub-selections together), and `@skip` /
`@include` applied. Whether a directive keeps its node depends on the variables, so the
decisions are worked out per request (`decide`) and a plan is compiled per set of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    is_abstract_type,
)

from schema.compiled.arguments import ArgumentReader

Included = FieldNode | FragmentSpreadNode | InlineFragmentNode


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a document, with the fragments it may spread and every node whose
    directives decide whether it is part of the answer."""

    definition: OperationDefinitionNode
    fragments: Mapping[str, FragmentDefinitionNode]
    conditional: tuple[Included, ...]

    @classmethod
    def of(cls, document: DocumentNode, operation_name: str | None) -> Operation | None:
        """The operation `operation_name` names (the only one when None), else None."""
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            chosen = operations[0] if len(operations) == 1 else None
        else:
            chosen = next(
                (o for o in operations if o.name and o.name.value == operation_name), None
            )
        if chosen is None:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        nodes = [chosen.selection_set, *(f.selection_set for f in fragments.values())]
        conditional = tuple(node for node in _walk(nodes) if _has_condition(node))
        return cls(chosen, fragments, conditional)

    def decide(self, variables: Mapping[str, Any]) -> tuple[bool, ...]:
        """Whether each conditional node is included, for these coerced variables
        (GraphQLError where a condition's value is missing)."""
        return tuple(_included(node, variables) for node in self.conditional)


def _walk(sets: Sequence[SelectionSetNode]) -> Iterator[Included]:
    for selection_set in sets:
        for node in selection_set.selections:
            assert isinstance(node, Included)
            yield node
            if not isinstance(node, FragmentSpreadNode) and node.selection_set is not None:
                yield from _walk([node.selection_set])


def _has_condition(node: Included) -> bool:
    return any(
        d.name.value in (GraphQLSkipDirective.name, GraphQLIncludeDirective.name)
        for d in node.directives or ()
    )


def _included(node: Included, variables: Mapping[str, Any]) -> bool:
    """@skip wins over @include, as graphql-core's `should_include_node` decides."""
    directives = {d.name.value: d for d in node.directives or ()}
    skip = directives.get(GraphQLSkipDirective.name)
    if skip and ArgumentReader(GraphQLSkipDirective.args, skip).read(variables)["if"]:
        return False
    include = directives.get(GraphQLIncludeDirective.name)
    return not include or bool(
        ArgumentReader(GraphQLIncludeDirective.args, include).read(variables)["if"]
    )


class Collector:
    """Groups fields by response key for one operation and one set of decisions."""

    def __init__(
        self, schema: GraphQLSchema, operation: Operation, decisions: tuple[bool, ...]
    ) -> None:
        self.schema = schema
        self.fragments = operation.fragments
        decided = zip(operation.conditional, decisions, strict=True)
        self.excluded = {id(node) for node, kept in decided if not kept}

    def fields(
        self, type_name: str, sets: Sequence[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        """Response key -> the field nodes asking for it, in first-appearance order, for an
        object of type `type_name` (every type the compiled path serves is an object type)."""
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()  # each fragment once per merged selection, as graphql-core
        for selection_set in sets:
            self._collect(type_name, selection_set, grouped, visited)
        return grouped

    def subfields(self, type_name: str, nodes: Sequence[FieldNode]) -> dict[str, list[FieldNode]]:
        """The merged selection of every node asking for one response key."""
        return self.fields(type_name, [n.selection_set for n in nodes if n.selection_set])

    def _collect(
        self,
        type_name: str,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for node in selection_set.selections:
            if id(node) in self.excluded:
                continue
            if isinstance(node, FieldNode):
                key = node.alias.value if node.alias else node.name.value
                grouped.setdefault(key, []).append(node)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                if condition is None or self._applies(condition.name.value, type_name):
                    self._collect(type_name, node.selection_set, grouped, visited)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self._applies(fragment.type_condition.name.value, type_name):
                    self._collect(type_name, fragment.selection_set, grouped, visited)

    def _applies(self, condition_name: str, type_name: str) -> bool:
        """graphql-core's `does_fragment_condition_match`: the object's own type, or an
        abstract type (a union, an interface) it belongs to."""
        if condition_name == type_name:
            return True
        condition = self.schema.get_type(condition_name)
        object_type = self.schema.get_type(type_name)
        return (
            is_abstract_type(condition)
            and isinstance(object_type, GraphQLObjectType)
            and self.schema.is_sub_type(condition, object_type)
        )
