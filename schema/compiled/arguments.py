"""Variables and arguments of a compiled document, read per request without graphql-core's
general machinery where the values are plain.

graphql-core coerces variables and arguments for any input type; the fields the compiled
path writes take only Int, String, ID and Boolean, whose plain values (an int in 32 bits, a
string, a bool, null) coerce to themselves. `coerce_variables` takes that shortcut when
every value is plain and asks graphql-core otherwise, so both give the same values and
graphql-core alone words the errors (through Strawberry). An `ArgumentReader` is worked out
per field when a document is compiled: literals coerced once, variables looked up, defaults
applied as graphql-core's `get_argument_values` applies them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLNonNull,
    GraphQLSchema,
    Undefined,
    VariableDefinitionNode,
    VariableNode,
    is_input_type,
    is_non_null_type,
    type_from_ast,
    value_from_ast,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import ArgumentNode, DirectiveNode, FieldNode

GRAPHQL_MIN_INT, GRAPHQL_MAX_INT = -(2**31), 2**31 - 1


def _plain(type_name: str, value: Any) -> bool:
    """Whether `value` coerces to itself as a `type_name` value."""
    if type_name in ("String", "ID"):
        return type(value) is str
    if type_name == "Int":
        return type(value) is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT
    if type_name == "Boolean":
        return type(value) is bool
    return False


class VariableCoercion:
    """Coerces one operation's variables: the shortcut for plain values, else graphql-core."""

    def __init__(
        self, schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
    ) -> None:
        self.schema = schema
        self.definitions = definitions
        # (name, scalar type name, non-null, default) per variable, where the shortcut
        # applies to its type (a named scalar, maybe non-null, with a literal default).
        self.plain: list[tuple[str, str, bool, Any]] | None = []
        for definition in definitions:
            type_ = type_from_ast(schema, definition.type)
            if not is_input_type(type_):  # validation refuses such a document first
                self.plain = None
                break
            non_null = is_non_null_type(type_)
            named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
            name = getattr(named, "name", None)
            if name not in ("String", "ID", "Int", "Boolean"):
                self.plain = None
                break
            default = (
                Undefined
                if definition.default_value is None
                else value_from_ast(definition.default_value, type_)
            )
            self.plain.append((definition.variable.name.value, name, non_null, default))

    def coerce(self, given: Mapping[str, Any]) -> dict[str, Any] | None:
        """The coerced values (absent: not given and no default), or None where
        graphql-core refuses them."""
        if self.plain is not None:
            coerced: dict[str, Any] = {}
            for name, type_name, non_null, default in self.plain:
                if name not in given:
                    if default is not Undefined:
                        coerced[name] = default
                    elif non_null:
                        break
                    continue
                value = given[name]
                if value is None and not non_null:
                    coerced[name] = None
                elif _plain(type_name, value):
                    coerced[name] = value
                else:
                    break
            else:
                return coerced
        found = get_variable_values(self.schema, self.definitions, dict(given))
        return found.coerced if isinstance(found, VariableValues) else None


class ArgumentReader:
    """One field's (or directive's) arguments, as `get_argument_values` would give them."""

    def __init__(
        self, arguments: Mapping[str, GraphQLArgument], node: FieldNode | DirectiveNode
    ) -> None:
        given: dict[str, ArgumentNode] = {a.name.value: a for a in node.arguments or ()}
        # name -> (a literal's coerced value or Undefined, a variable's name or None,
        #          the argument's default or Undefined, whether it is non-null)
        self.steps: list[tuple[str, Any, str | None, Any, bool]] = []
        for name, argument in arguments.items():
            node_value = given[name].value if name in given else None
            variable = node_value.name.value if isinstance(node_value, VariableNode) else None
            literal = (
                value_from_ast(node_value, argument.type)
                if node_value is not None and variable is None
                else Undefined
            )
            non_null = is_non_null_type(argument.type)
            self.steps.append((name, literal, variable, argument.default_value, non_null))

    @classmethod
    def of_field(cls, field: GraphQLField, node: FieldNode) -> ArgumentReader:
        return cls(field.args, node)

    def read(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The argument values; GraphQLError where graphql-core would refuse them."""
        values: dict[str, Any] = {}
        for name, literal, variable, default, non_null in self.steps:
            if literal is not Undefined:
                value = literal
            elif variable is not None and variable in variables:
                value = variables[variable]
            elif default is not Undefined:
                value = default
            elif non_null:
                raise GraphQLError(f"Argument '{name}' was not provided.")
            else:
                continue
            if value is None and non_null:
                raise GraphQLError(f"Argument '{name}' must not be null.")
            values[name] = value
        return values
