"""The served schema (read by introspection over HTTP) holds every name of the contract.

The contract (shared/spec/graphql.md) fixes names and types; types, fields and arguments
may be added. Its SDL is copied below, with the Relay connections it describes in a
comment written out.
"""

from __future__ import annotations

from typing import cast

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    IntrospectionQuery,
    build_client_schema,
    build_schema,
    get_introspection_query,
)

from tests.schema.gql import ok

CONTRACT = """
scalar DateTime
scalar JSON
enum MessageType { USER AI }
enum LogLevel { INFO WARNING ERROR }
enum Role { USER ADMIN }
type User { id: ID! name: String! role: Role! }
type ModelConfig {
  id: ID! modelName: String! modelVersion: String! provider: String! parameters: JSON!
  baseUrl: String apiKeyEnv: String isDefault: Boolean! version: Int! updatedAt: DateTime!
}
type Message {
  id: ID! type: MessageType! content: String! metadata: JSON createdAt: DateTime!
  session: ChatSession!
}
type ChatSession {
  id: ID! user: User! modelConfig: ModelConfig! createdAt: DateTime! messageCount: Int!
  messages(first: Int, after: String, last: Int, before: String): MessageConnection!
}
type LogEntry { id: ID! level: LogLevel! message: String! createdAt: DateTime! }
type PageInfo {
  hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String
}
type ChatSessionEdge { cursor: String! node: ChatSession! }
type ChatSessionConnection { edges: [ChatSessionEdge!]! pageInfo: PageInfo! totalCount: Int! }
type MessageEdge { cursor: String! node: Message! }
type MessageConnection { edges: [MessageEdge!]! pageInfo: PageInfo! totalCount: Int! }
type LogEntryEdge { cursor: String! node: LogEntry! }
type LogEntryConnection { edges: [LogEntryEdge!]! pageInfo: PageInfo! totalCount: Int! }
type Query {
  me: User!
  session(id: ID!): ChatSession
  sessions(first: Int, after: String, userId: ID): ChatSessionConnection!
  modelConfigs: [ModelConfig!]!
  modelConfig(id: ID!): ModelConfig
  logs(level: LogLevel, startTime: DateTime, endTime: DateTime,
       first: Int, after: String): LogEntryConnection!
}
input CreateSessionInput { modelConfigId: ID }
input SendMessageInput { sessionId: ID! content: String! metadata: JSON clientMessageId: String }
input UpdateModelConfigInput { modelName: String modelVersion: String parameters: JSON
                               provider: String baseUrl: String apiKeyEnv: String
                               isDefault: Boolean }
input CreateModelConfigInput { modelName: String! modelVersion: String! provider: String!
                               parameters: JSON baseUrl: String apiKeyEnv: String
                               isDefault: Boolean }
type SendMessagePayload { userMessage: Message! aiMessage: Message! }
type Mutation {
  createSession(input: CreateSessionInput): ChatSession!
  sendMessage(input: SendMessageInput!): SendMessagePayload!
  updateModelConfig(id: ID!, input: UpdateModelConfigInput!): ModelConfig!
  createModelConfig(input: CreateModelConfigInput!): ModelConfig!
}
type MessageDelta { messageId: ID! delta: String! }
union MessageEvent = Message | MessageDelta
type Subscription {
  sendMessageStream(input: SendMessageInput!): MessageEvent!
  messageAdded(sessionId: ID!): Message!
}
"""


async def served_schema(client: httpx.AsyncClient) -> GraphQLSchema:
    """The schema as a client learns it: the introspection query, without a token."""
    data = await ok(client, get_introspection_query(descriptions=True))
    return build_client_schema(cast(IntrospectionQuery, data))


def differences(contract: GraphQLSchema, served: GraphQLSchema) -> list[str]:
    """Every name of `contract` that `served` lacks or types differently."""
    problems: list[str] = []
    for name, wanted in contract.type_map.items():
        if name.startswith("__"):
            continue
        got = served.type_map.get(name)
        if got is None or type(got) is not type(wanted):
            problems.append(f"type {name}: {got!r}, not a {type(wanted).__name__}")
            continue
        if isinstance(wanted, GraphQLEnumType):
            assert isinstance(got, GraphQLEnumType)
            if list(got.values) != list(wanted.values):
                problems.append(f"enum {name}: {list(got.values)}")
        elif isinstance(wanted, GraphQLUnionType):
            assert isinstance(got, GraphQLUnionType)
            if {t.name for t in got.types} != {t.name for t in wanted.types}:
                problems.append(f"union {name}: {[t.name for t in got.types]}")
        elif isinstance(wanted, GraphQLObjectType | GraphQLInputObjectType):
            assert isinstance(got, GraphQLObjectType | GraphQLInputObjectType)
            for field_name, field in wanted.fields.items():
                served_field = got.fields.get(field_name)
                if served_field is None or str(served_field.type) != str(field.type):
                    problems.append(f"{name}.{field_name}: {served_field and served_field.type}")
                    continue
                for arg_name, arg in getattr(field, "args", {}).items():
                    served_arg = served_field.args.get(arg_name)
                    if served_arg is None or str(served_arg.type) != str(arg.type):
                        problems.append(f"{name}.{field_name}({arg_name}:)")
    return problems


async def test_every_contract_name_is_served_with_its_type(client: httpx.AsyncClient) -> None:
    served = await served_schema(client)

    assert differences(build_schema(CONTRACT), served) == []
    assert served.query_type and served.query_type.name == "Query"
    assert served.mutation_type and served.mutation_type.name == "Mutation"
    assert served.subscription_type and served.subscription_type.name == "Subscription"


async def test_the_check_sees_a_missing_field_and_a_changed_type(
    client: httpx.AsyncClient,
) -> None:
    served = await served_schema(client)
    stricter = CONTRACT.replace("baseUrl: String apiKeyEnv", "baseUrl: String! apiKeyEnv", 1)
    invented = CONTRACT.replace("type User { id: ID!", "type User { nickname: String! id: ID!")

    assert differences(build_schema(stricter), served) == ["ModelConfig.baseUrl: String"]
    assert differences(build_schema(invented), served) == ["User.nickname: None"]
