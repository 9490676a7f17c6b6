"""A read operation compiled to ONE PostgreSQL statement that writes the whole answer.

The statement returns the response body as text, byte for byte what Strawberry's executor
would answer over the same rows (`{"data":{...}}`, compact, UTF-8, keys in selection
order): objects and lists are concatenated text, strings escaped by `to_json` (the same
escapes as orjson), times written as `db.times.iso` writes them, cursors as
`schema.cursors` encodes them, JSON columns compacted from `jsonb`'s text.

The rules stay the service layer's: who may see a session (`sessions.visible_sql`,
`sessions.listed_owner`), how a page of messages is cut (`history_windows.seq_range_sql`),
how arguments are checked (`Slice.of`, the cursor parsers). A request whose arguments
those checks refuse raises `Refused`, and the caller answers it through Strawberry, which
words the error; a document asking for anything not written here raises `Unsupported` when
compiled and goes to Strawberry for good. Where the answer would differ from Strawberry's
(a relation's row missing, an enum value the schema lacks, a number jsonb writes otherwise
than orjson), the statement writes MARK, which no answer holds otherwise, and Strawberry
answers that request.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLObjectType, GraphQLSchema, SelectionSetNode

from db.errors import Forbidden, Invalid
from db.identity import Caller
from db.services import model_configs, sessions, users
from db.services.history_windows import seq_range_sql
from db.services.ids import is_uuid
from db.services.keyset import newest_first_sql
from db.services.pagination import Slice
from db.times import LATEST, iso_sql
from schema.compiled.arguments import ArgumentReader
from schema.compiled.selections import Collector
from schema.cursors import key_cursor_sql, parse_key_cursor, parse_seq_cursor, seq_cursor_sql
from schema.types.enums import MessageType, Role


class Unsupported(Exception):
    """The document asks for something the compiled path does not write."""


class Refused(Exception):
    """This request's arguments or caller are refused: Strawberry answers it."""


@dataclass(slots=True)
class Binding:
    """What one request binds a plan's parameters from."""

    caller: Caller
    variables: Mapping[str, Any]  # coerced
    memo: dict[int, Mapping[str, object]] = field(default_factory=dict)


Reader = Callable[[Binding], object]
Build = Callable[[list[FieldNode]], str]


@dataclass(frozen=True, slots=True)
class Plan:
    """One statement and how each of its parameters ($1, $2, ...) is read per request."""

    sql: str
    params: tuple[Reader, ...]

    def bind(self, caller: Caller, variables: Mapping[str, Any]) -> list[object]:
        binding = Binding(caller, variables)
        try:
            return [read(binding) for read in self.params]
        except (Invalid, Forbidden, GraphQLError):
            raise Refused from None


def compile_operation(
    schema: GraphQLSchema, collector: Collector, selection: Sequence[SelectionSetNode]
) -> Plan:
    """The plan of a query operation whose root selection set is `selection`."""
    compiler = _Compiler(schema, collector)
    root = compiler.object("Query", collector.fields("Query", selection), compiler.query_fields())
    sql, params = compiler.numbered(f"SELECT '{{\"data\":' || {root} || '}}'")
    return Plan(sql=sql, params=params)


# A control character: every string of an answer is escaped (to_json, jsonb), so an answer
# never holds it raw; where it appears, Strawberry answers instead.
MARK = "\x01"
_MARK_SQL = "E'\\x01'"


def _required(expr: str) -> str:
    """A non-null value that a missing row would leave NULL."""
    return f"coalesce({expr}, {_MARK_SQL})"


# Text of JSON values, from SQL expressions of the column types.
def _string(expr: str) -> str:
    return f"to_json({expr})::text"


def _nullable(json_expr: str) -> str:
    return f"coalesce({json_expr}, 'null')"


def _id(expr: str) -> str:
    return f"""('"' || {expr}::text || '"')"""


def _moment(expr: str) -> str:
    return f"""('"' || {iso_sql(expr)} || '"')"""


def _int(expr: str) -> str:
    return f"({expr})::text"


def _bool(expr: str) -> str:
    return f"CASE WHEN {expr} THEN 'true' ELSE 'false' END"


def _enum(expr: str, enum: type[Enum]) -> str:
    # A value the enum lacks: Strawberry answers (with its error).
    cases = " ".join(f"""WHEN '{m.value}' THEN '"{m.name}"'""" for m in enum)
    return f"CASE {expr} {cases} ELSE {_MARK_SQL} END"


def _json(expr: str, *, nullable: bool = True) -> str:
    """jsonb's text as orjson writes the value Strawberry reads back from it.

    jsonb writes ", " and ": " between members, orjson neither: strings are skipped whole
    (the first alternative), spaces elsewhere dropped. jsonb keeps a number as it came;
    orjson writes a float's shortest form (1e-05 for 0.00001, 1.5 for 1.50, 17 digits at
    most) and reads an integer past 64 bits as a float: where such a number may be (text
    that looks so, in a string or across a number, only costs the slower path),
    Strawberry answers. A message's metadata is read compacted already (`_stored_json`):
    migration 5 froze this expression of it into a generated column."""
    missing = "'null'" if nullable else _MARK_SQL
    # Below 1e-4; more digits than a float's 17 from the first significant one (integers
    # past 64 bits too); a fraction ending in 0 after its first digit.
    odd_number = r"0\.0000|[1-9][0-9.]{18}|\.[0-9]*[0-9]0([^0-9]|$)"
    return rf"""CASE WHEN {expr} IS NULL OR {expr} = 'null'::jsonb THEN {missing}
        WHEN {expr}::text ~ '{odd_number}' THEN {_MARK_SQL}
        ELSE regexp_replace({expr}::text, '("(?:[^"\\]|\\.)*")| ', '\1', 'g') END"""


def _stored_json(column: str) -> str:
    """A JSON column's text kept compacted by `_json`'s rule in a generated column (NULL:
    Strawberry answers), so nothing is worked out per read."""
    return f"coalesce({column}, {_MARK_SQL})"


def _quoted(text_expr: str) -> str:
    return _nullable(f"""('"' || {text_expr} || '"')""")


def _typename(name: str) -> str:
    return f"""'"{name}"'"""


def _object(parts: Sequence[tuple[str, str]]) -> str:
    # Response keys are GraphQL names ([_A-Za-z][_0-9A-Za-z]*): nothing to escape.
    if not parts:  # every field skipped
        return "'{}'"
    pieces = []
    for index, (key, expr) in enumerate(parts):
        opening = "{" if index == 0 else ","
        pieces.append(f"""'{opening}"{key}":' || {expr}""")
    return "(" + " || ".join(pieces) + " || '}')"


def _list(aggregate: str) -> str:
    return f"('[' || coalesce({aggregate}, '') || ']')"


def _clamped(seq: int | None) -> int | None:
    # A cursor may carry any 64-bit number; past ±2^62 every window is cut the same way,
    # and the SQL arithmetic on it cannot overflow.
    return None if seq is None else max(-(2**62), min(seq, 2**62))


MAX_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
# Placeholders of parameters while a statement is written: never in SQL text otherwise.
_PARAM_DELIMITER = "\x00"
_PLACEHOLDER = re.compile(f"{_PARAM_DELIMITER}(\\d+){_PARAM_DELIMITER}")


class _Compiler:
    def __init__(self, schema: GraphQLSchema, collector: Collector) -> None:
        self.schema = schema
        self.collector = collector
        self.params: list[Reader] = []
        self._aliases = itertools.count(1)
        self._viewer: tuple[str, str] | None = None

    def param(self, reader: Reader, cast: str) -> str:
        """A placeholder of a parameter; `numbered` makes it $n if the statement uses it
        (a builder may ask for one that its field's selection then leaves out)."""
        self.params.append(reader)
        return f"{_PARAM_DELIMITER}{len(self.params) - 1}{_PARAM_DELIMITER}::{cast}"

    def numbered(self, sql: str) -> tuple[str, tuple[Reader, ...]]:
        """`sql` with its placeholders numbered $1, $2... in order of first use."""
        used: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${used.setdefault(match.group(1), len(used) + 1)}"

        numbered = _PLACEHOLDER.sub(number, sql)
        return numbered, tuple(self.params[int(index)] for index in used)

    def alias(self, prefix: str) -> str:
        return f"{prefix}{next(self._aliases)}"

    def viewer(self) -> tuple[str, str]:
        """The parameters of the caller's id and whether they are an admin."""
        if self._viewer is None:
            self._viewer = (
                self.param(lambda b: b.caller.user_id, "uuid"),
                self.param(lambda b: b.caller.is_admin, "boolean"),
            )
        return self._viewer

    def arguments(
        self,
        parent: str,
        nodes: list[FieldNode],
        convert: Callable[[dict[str, Any], Caller], Mapping[str, object]],
    ) -> Callable[[str, str], str]:
        """A function giving the parameter of one converted argument value: the field's
        arguments are coerced (graphql-core, as the executor does) and converted (the
        service layer's checks) once per request."""
        parent_type = self.schema.get_type(parent)
        assert isinstance(parent_type, GraphQLObjectType)
        node = nodes[0]  # merged fields have equal arguments (validation)
        reader = ArgumentReader.of_field(parent_type.fields[node.name.value], node)

        def values(binding: Binding) -> Mapping[str, object]:
            got = binding.memo.get(id(node))
            if got is None:
                raw = reader.read(binding.variables)
                got = binding.memo[id(node)] = convert(raw, binding.caller)
            return got

        def param(name: str, cast: str) -> str:
            return self.param(lambda binding: values(binding)[name], cast)

        return param

    def object(
        self, type_name: str, grouped: Mapping[str, list[FieldNode]], fields: Mapping[str, Build]
    ) -> str:
        parts = []
        for key, nodes in grouped.items():
            name = nodes[0].name.value
            if name == "__typename":
                parts.append((key, _typename(type_name)))
                continue
            build = fields.get(name)
            if build is None:
                raise Unsupported(f"{type_name}.{name}")
            parts.append((key, build(nodes)))
        return _object(parts)

    def sub(self, type_name: str, nodes: list[FieldNode]) -> dict[str, list[FieldNode]]:
        return self.collector.subfields(type_name, nodes)

    # Query
    def query_fields(self) -> dict[str, Build]:
        return {
            "me": self.me,
            "session": self.session,
            "sessions": self.session_list,
            "modelConfigs": self.model_config_list,
            "modelConfig": self.model_config,
        }

    def me(self, nodes: list[FieldNode]) -> str:
        viewer, _ = self.viewer()
        u = self.alias("u")
        user = self.object("User", self.sub("User", nodes), self.user_fields(u))
        return _required(f"(SELECT {user} FROM users {u} WHERE {u}.id = {viewer})")

    def session(self, nodes: list[FieldNode]) -> str:
        arg = self.arguments("Query", nodes, _one_id)
        session_id = arg("id", "uuid")
        viewer, admin = self.viewer()
        s = self.alias("s")
        found = self.object("ChatSession", self.sub("ChatSession", nodes), self.session_fields(s))
        visible = sessions.visible_sql(s, viewer=viewer, admin=admin)
        return _nullable(
            f"(SELECT {found} FROM chat_sessions {s} WHERE {s}.id = {session_id} AND {visible})"
        )

    def session_list(self, nodes: list[FieldNode]) -> str:
        arg = self.arguments("Query", nodes, _session_list_arguments)
        owner, size = arg("owner", "uuid"), arg("size", "int")
        after_time, after_id = arg("after_time", "timestamptz"), arg("after_id", "uuid")
        archived = arg("archived", "boolean")
        p, g, t = self.alias("p"), self.alias("g"), self.alias("t")

        def listed(alias: str) -> str:
            # sessions.window: the owner's sessions, filtered by `archived` (null: all).
            return (
                f"{sessions.listed_sql(alias, owner)} AND {sessions.archived_sql(alias, archived)}"
            )

        page = newest_first_sql(
            table="chat_sessions",
            alias=t,
            condition=listed(t),
            after=(after_time, after_id),
            size=size,
        )
        page = f"{page} {p}"
        kept = f"FILTER (WHERE {p}.rn <= {size})"
        c = self.alias("c")
        return self.connection(
            "ChatSession",
            nodes,
            node_fields=self.session_fields(p),
            cursor_keys=(f"{p}.created_at", f"{p}.id"),
            cursor_of=partial(key_cursor_sql, "s"),
            kept=kept,
            source=page,
            group=g,
            has_next=lambda: f"{g}.fetched > {size}",
            has_previous=lambda: arg("has_after", "boolean"),
            total=lambda: f"(SELECT count(*) FROM chat_sessions {c} WHERE {listed(c)})",
        )

    def model_config_list(self, nodes: list[FieldNode]) -> str:
        c = self.alias("c")
        config = self.object("ModelConfig", self.sub("ModelConfig", nodes), self.config_fields(c))
        # model_configs.list_all: oldest first.
        order = ", ".join(f"{c}.{column}" for column in model_configs.LIST_ORDER)
        configs = f"string_agg({config}, ',' ORDER BY {order})"
        return f"(SELECT {_list(configs)} FROM model_configs {c})"

    def model_config(self, nodes: list[FieldNode]) -> str:
        arg = self.arguments("Query", nodes, _one_id)
        config_id = arg("id", "uuid")
        c = self.alias("c")
        config = self.object("ModelConfig", self.sub("ModelConfig", nodes), self.config_fields(c))
        return _nullable(f"(SELECT {config} FROM model_configs {c} WHERE {c}.id = {config_id})")

    # Relay connections
    def connection(
        self,
        node_type: str,
        nodes: list[FieldNode],
        *,
        node_fields: Mapping[str, Build],
        cursor_keys: Sequence[str],
        cursor_of: Callable[..., str],
        kept: str,
        source: str,
        group: str,
        has_next: Callable[[], str],
        has_previous: Callable[[], str],
        total: Callable[[], str],
        around: str = "",
    ) -> str:
        """`XConnection { edges { cursor node } pageInfo totalCount }` over the rows of
        `source` (a subquery, in page order) that `kept` keeps: one aggregate per list of
        edges asked for (under aliases, a connection may be asked for several), in the
        subquery `group`, after the FROM items `around`; `has_next`, `has_previous` and
        `total` give what is read, when asked for (a parameter is only allocated where it
        is used). An edge's cursor is `cursor_of(*keys)` of its row's `cursor_keys`; for
        `startCursor` and `endCursor` the keys are aggregated (arrays of plain values)
        and only the page's first and last rows encoded, not every row.

        The aggregates take their rows in the order `source` gives them: no ORDER BY of
        their own, which would sort every page again (a sort per session of a list, the
        larger part of a nested query's cost). PostgreSQL feeds a plain aggregate in its
        input's order when that input is a sorted subquery and the aggregate's level joins
        nothing else (its documentation, "Aggregate Expressions"): `source` is such a
        subquery, alone in the aggregate's FROM."""
        aggregates: list[str] = ["count(*) AS fetched"]
        edge_cursor = cursor_of(*cursor_keys)
        key_arrays = [f"{group}.k{index}" for index in range(len(cursor_keys))]
        wants_cursors = False

        def edges(edge_nodes: list[FieldNode]) -> str:
            edge_type = f"{node_type}Edge"
            edge = self.object(
                edge_type,
                self.sub(edge_type, edge_nodes),
                {
                    "cursor": lambda _: f"""('"' || {edge_cursor} || '"')""",
                    "node": lambda n: self.object(node_type, self.sub(node_type, n), node_fields),
                },
            )
            name = f"e{len(aggregates)}"
            aggregates.append(f"string_agg({edge}, ',') {kept} AS {name}")
            return _list(f"{group}.{name}")

        def page_info(info_nodes: list[FieldNode]) -> str:
            nonlocal wants_cursors
            first = cursor_of(*(f"{keys}[1]" for keys in key_arrays))
            last = cursor_of(*(f"{keys}[array_upper({keys}, 1)]" for keys in key_arrays))
            fields: dict[str, Build] = {
                "hasNextPage": lambda _: _bool(has_next()),
                "hasPreviousPage": lambda _: _bool(has_previous()),
                "startCursor": lambda _: _quoted(first),
                "endCursor": lambda _: _quoted(last),
            }
            grouped = self.sub("PageInfo", info_nodes)
            wants_cursors |= any(n[0].name.value.endswith("Cursor") for n in grouped.values())
            return self.object("PageInfo", grouped, fields)

        connection_type = f"{node_type}Connection"
        answer = self.object(
            connection_type,
            self.sub(connection_type, nodes),
            {"edges": edges, "pageInfo": page_info, "totalCount": lambda _: _int(total())},
        )
        if wants_cursors:
            aggregates += [
                f"array_agg({key}) {kept} AS k{index}" for index, key in enumerate(cursor_keys)
            ]
        aggregated = f"(SELECT {', '.join(aggregates)} FROM {source}) {group}"
        return f"(SELECT {answer} FROM {around} {aggregated})"

    # ChatSession
    def session_fields(self, s: str) -> dict[str, Build]:
        return {
            "id": lambda _: _id(f"{s}.id"),
            "createdAt": lambda _: _moment(f"{s}.created_at"),
            # sessions.message_count: sequence numbers run 1..last_seq without gaps.
            "messageCount": lambda _: _int(f"{s}.last_seq"),
            "title": lambda _: _nullable(_string(f"{s}.title")),
            "updatedAt": lambda _: _moment(f"{s}.updated_at"),
            "archived": lambda _: _bool(f"{s}.archived"),
            "user": lambda nodes: self.user_of(nodes, f"{s}.user_id"),
            "modelConfig": lambda nodes: self.config_of(nodes, f"{s}.model_config_id"),
            "messages": lambda nodes: self.message_list(nodes, s),
            "forkedFrom": lambda nodes: self.forked_from(nodes, s),
        }

    def forked_from(self, nodes: list[FieldNode], s: str) -> str:
        # The messages DataLoader's rule (messages.get_many): null unless the message is
        # still there, in a session the caller may see.
        viewer, admin = self.viewer()
        m, o = self.alias("m"), self.alias("o")
        found = self.object("Message", self.sub("Message", nodes), self.message_fields(m))
        visible = sessions.visible_sql(o, viewer=viewer, admin=admin)
        return _nullable(
            f"(SELECT {found} FROM messages {m} JOIN chat_sessions {o} ON {o}.id = {m}.session_id"
            f" WHERE {m}.id = {s}.forked_from_id AND {visible})"
        )

    def user_of(self, nodes: list[FieldNode], user_id: str) -> str:
        viewer, admin = self.viewer()
        u = self.alias("u")
        user = self.object("User", self.sub("User", nodes), self.user_fields(u))
        visible = users.visible_sql(u, viewer=viewer, admin=admin)
        return _required(f"(SELECT {user} FROM users {u} WHERE {u}.id = {user_id} AND {visible})")

    def config_of(self, nodes: list[FieldNode], config_id: str) -> str:
        c = self.alias("c")
        config = self.object("ModelConfig", self.sub("ModelConfig", nodes), self.config_fields(c))
        return _required(f"(SELECT {config} FROM model_configs {c} WHERE {c}.id = {config_id})")

    def message_list(self, nodes: list[FieldNode], s: str) -> str:
        arg = self.arguments("ChatSession", nodes, _message_list_arguments)
        size, backward = arg("size", "bigint"), arg("backward", "boolean")
        after, before = arg("after", "bigint"), arg("before", "bigint")
        r, m, q, g = self.alias("r"), self.alias("m"), self.alias("q"), self.alias("g")
        cut = seq_range_sql(
            last_seq=f"{s}.last_seq", size=size, backward=backward, after=after, before=before
        )
        rows = f"""(SELECT {q}.* FROM messages {q} WHERE {q}.session_id = {s}.id
            AND {q}.seq BETWEEN {r}.low AND {r}.high ORDER BY {q}.seq) {m}"""
        return self.connection(
            "Message",
            nodes,
            node_fields=self.message_fields(m),
            cursor_keys=(f"{m}.seq",),
            cursor_of=seq_cursor_sql,
            kept="",
            source=rows,
            group=g,
            has_next=lambda: f"{r}.has_next",
            has_previous=lambda: f"{r}.has_previous",
            total=lambda: f"{s}.last_seq",
            around=f"{cut} {r} CROSS JOIN LATERAL",
        )

    # Message
    def message_fields(self, m: str) -> dict[str, Build]:
        def session(nodes: list[FieldNode]) -> str:
            s = self.alias("s")
            fields = self.session_fields(s)
            found = self.object("ChatSession", self.sub("ChatSession", nodes), fields)
            own = f"(SELECT {found} FROM chat_sessions {s} WHERE {s}.id = {m}.session_id)"
            return _required(own)

        return {
            "id": lambda _: _id(f"{m}.id"),
            "type": lambda _: _enum(f"{m}.type", MessageType),
            "content": lambda _: _string(f"{m}.content"),
            "metadata": lambda _: _stored_json(f"{m}.metadata_json"),
            "createdAt": lambda _: _moment(f"{m}.created_at"),
            "session": session,
        }

    # User, ModelConfig
    def user_fields(self, u: str) -> dict[str, Build]:
        return {
            "id": lambda _: _id(f"{u}.id"),
            "name": lambda _: _string(f"{u}.name"),
            "role": lambda _: _enum(f"{u}.role", Role),
            "createdAt": lambda _: _moment(f"{u}.created_at"),
            "disabledAt": lambda _: _nullable(_moment(f"{u}.disabled_at")),
        }

    def config_fields(self, c: str) -> dict[str, Build]:
        return {
            "id": lambda _: _id(f"{c}.id"),
            "modelName": lambda _: _string(f"{c}.model_name"),
            "modelVersion": lambda _: _string(f"{c}.model_version"),
            "provider": lambda _: _string(f"{c}.provider"),
            "parameters": lambda _: _json(f"{c}.parameters", nullable=False),
            "baseUrl": lambda _: _nullable(_string(f"{c}.base_url")),
            "apiKeyEnv": lambda _: _nullable(_string(f"{c}.api_key_env")),
            "isDefault": lambda _: _bool(f"{c}.is_default"),
            "version": lambda _: _int(f"{c}.version"),
            "updatedAt": lambda _: _moment(f"{c}.updated_at"),
        }


# Argument conversions: the service layer's checks, then the statement's parameter values.
def _one_id(args: dict[str, Any], caller: Caller) -> Mapping[str, object]:
    # An id that is no UUID matches no row (the services answer NotFound, the door null).
    value = args["id"]
    return {"id": value if is_uuid(value) else None}


def _session_list_arguments(args: dict[str, Any], caller: Caller) -> Mapping[str, object]:
    page = Slice.of(first=args.get("first"), last=None)
    after = parse_key_cursor(args.get("after"), "s", "after")
    return {
        "owner": sessions.listed_owner(caller, args.get("userId")),
        "size": page.size,
        # No cursor: a bound past every row keeps the condition (and its index use) whole.
        "after_time": after.created_at if after else LATEST,
        "after_id": str(after.id) if after else MAX_UUID,
        "has_after": after is not None,
        # Unarchived sessions unless asked otherwise (the argument's default is false).
        "archived": args.get("archived"),
    }


def _message_list_arguments(args: dict[str, Any], caller: Caller) -> Mapping[str, object]:
    page = Slice.of(first=args.get("first"), last=args.get("last"))
    return {
        "size": page.size,
        "backward": page.backward,
        "after": _clamped(parse_seq_cursor(args.get("after"), "after")),
        "before": _clamped(parse_seq_cursor(args.get("before"), "before")),
    }
