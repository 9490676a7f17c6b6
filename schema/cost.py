"""The query cost limit: how many objects a document may ask for, at most.

Depth and alias limits bound the shape of a document but not its size: `sessions(first:
100) { messages(first: 100) { ... session { messages(first: 100) ...` stays shallow and
alias-free yet asks for a million rows. The cost of a document is the number of objects
(non-scalar values) it could return, with each list's size multiplied along the path:

- a field with `first`/`last` (a connection) is one object whose list (`edges`) holds
  that many items: a literal value, the largest page (100) when the value is a variable,
  the default page (20) when absent;
- any other list returns at most `LIST_ESTIMATE` items (model configs, a user's keys);
- every object counts once per time it can appear.

The rule runs at validation, before any variable is known, so a document is judged by
its worst case and the answer is the same for every request of it; the compiled read
path validates with the same rules, so both paths refuse alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
)

from db.services.pagination import DEFAULT_SLICE_SIZE, MAX_PAGE_SIZE

# Items assumed in a list that takes no page size: such lists are short by nature.
LIST_ESTIMATE = 100
# The arguments that size a page.
PAGE_ARGUMENTS = ("first", "last")


def cost_rule(max_cost: int) -> type[ASTValidationRule]:
    """A validation rule refusing operations that could return more than `max_cost`
    objects."""

    class QueryCostRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            root = self.context.schema.get_root_type(node.operation)
            if root is None:
                return
            walk = _Walk(self.context)
            cost = walk.selection(root, node.selection_set, multiplier=1, page_size=None)
            if cost > max_cost:
                name = f"'{node.name.value}' " if node.name else ""
                self.report_error(
                    GraphQLError(
                        f"Operation {name}could return up to {cost:,} objects; "
                        f"the limit is {max_cost:,} (ask for smaller pages).",
                        node,
                    )
                )

    return QueryCostRule


class _Walk:
    """One operation's cost."""

    def __init__(self, context: ValidationContext) -> None:
        self.fragments: dict[str, FragmentDefinitionNode] = {
            fragment.name.value: fragment
            for fragment in context.document.definitions
            if isinstance(fragment, FragmentDefinitionNode)
        }
        self.schema = context.schema
        self.spreading: set[str] = set()  # fragments on the current path (cycles)
        self.fragment_costs: dict[tuple[str, int | None], int] = {}

    def selection(
        self,
        parent: GraphQLNamedType,
        selection_set: SelectionSetNode | None,
        *,
        multiplier: int,
        page_size: int | None,
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(parent, node, multiplier, page_size)
            elif isinstance(node, InlineFragmentNode):
                on = (
                    self.schema.get_type(node.type_condition.name.value)
                    if node.type_condition is not None
                    else parent
                )
                if on is not None:
                    total += self.selection(
                        on, node.selection_set, multiplier=multiplier, page_size=page_size
                    )
            elif isinstance(node, FragmentSpreadNode):
                total += self.spread(node, multiplier, page_size)
        return total

    def spread(self, node: FragmentSpreadNode, multiplier: int, page_size: int | None) -> int:
        # A cost grows in proportion to its multiplier, so each fragment is walked once
        # (per page size it is spread under) at 1 and multiplied: spreads of spreads
        # would otherwise take time exponential in a short document's length.
        name = node.name.value
        key = (name, page_size)
        if key not in self.fragment_costs:
            fragment = self.fragments.get(name)
            on = (
                self.schema.get_type(fragment.type_condition.name.value)
                if fragment is not None
                else None
            )
            if fragment is None or on is None or name in self.spreading:
                return 0  # unknown or cyclic: other rules report it
            self.spreading.add(name)
            try:
                self.fragment_costs[key] = self.selection(
                    on, fragment.selection_set, multiplier=1, page_size=page_size
                )
            finally:
                self.spreading.discard(name)
        return multiplier * self.fragment_costs[key]

    def field(
        self, parent: GraphQLNamedType, node: FieldNode, multiplier: int, page_size: int | None
    ) -> int:
        definition = _field_of(parent, node.name.value)
        if definition is None:
            return 0  # __typename, or unknown (other rules report it)
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        # A connection object counts once per parent; the page size it was given sizes
        # the list below it (its edges), not its other fields (pageInfo, totalCount).
        sized = _page_size(node, definition)
        if sized is not None:
            items, page = multiplier, sized
        elif _is_list(definition):
            items = multiplier * (LIST_ESTIMATE if page_size is None else page_size)
            page = None
        else:
            items, page = multiplier, None
        if is_abstract_type(named):
            parents: Iterable[GraphQLNamedType] = self.schema.get_possible_types(named)
        else:
            parents = (named,)
        inner = max(
            (
                self.selection(
                    each,
                    node.selection_set,
                    multiplier=items,
                    page_size=page,
                )
                for each in parents
            ),
            default=0,
        )
        return items + inner


def _field_of(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    """The field `name` of an object or interface type (None elsewhere, or unknown)."""
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def _is_list(definition: GraphQLField) -> bool:
    return isinstance(get_nullable_type(definition.type), GraphQLList)


def _page_size(node: FieldNode, definition: GraphQLField) -> int | None:
    """The items a paged field returns at most, or None for a field without pages."""
    if not any(name in definition.args for name in PAGE_ARGUMENTS):
        return None
    given = {argument.name.value: argument.value for argument in node.arguments or ()}
    sizes: list[int] = []
    for name in PAGE_ARGUMENTS:
        value = given.get(name)
        if isinstance(value, IntValueNode):
            sizes.append(max(0, min(int(value.value), MAX_PAGE_SIZE)))
        elif isinstance(value, VariableNode):
            sizes.append(MAX_PAGE_SIZE)
    return max(sizes) if sizes else DEFAULT_SLICE_SIZE
