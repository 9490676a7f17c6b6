// The GraphQL documents of the conversation half (checked against schema.graphql).
//
// Every message the conversation shows is read with the same fields, whichever way it came
// (a history page, a streamed turn, messageAdded), so one view code path draws them all.

// Fragments cannot be shared across documents by name alone: each document repeats them.
const MESSAGE_FIELDS = `fragment MessageFields on Message {
  id type content metadata createdAt
  feedback { rating }
  replyTo { id }
  variants { id content metadata createdAt feedback { rating } }
}`;

// A page of history has this many messages: the latest on opening, then older ones.
export const PAGE_SIZE = 30;

export const SESSION_HEADER = `query ConversationHeader($id: ID!) {
  session(id: $id) { id title archived modelConfig { id modelName } }
}`;

// The newest page when `before` is null, else the page before that cursor.
export const HISTORY_PAGE = `query ConversationHistory($id: ID!, $before: String) {
  session(id: $id) {
    id title archived modelConfig { id modelName }
    messages(last: ${PAGE_SIZE}, before: $before) {
      edges { cursor node { ...MessageFields } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}
${MESSAGE_FIELDS}`;

// A turn streams: the stored user message, the reply's pieces, the stored reply.
const TURN_EVENT = `__typename
    ... on Message { ...MessageFields }
    ... on MessageDelta { messageId delta offset end }`;

export const SEND_STREAM = `subscription SendMessage($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    ${TURN_EVENT}
  }
}
${MESSAGE_FIELDS}`;

export const REGENERATE_STREAM = `subscription RegenerateReply($input: RegenerateReplyInput!) {
  regenerateReplyStream(input: $input) {
    ${TURN_EVENT}
  }
}
${MESSAGE_FIELDS}`;

export const MESSAGE_ADDED = `subscription MessageAdded($sessionId: ID!) {
  messageAdded(sessionId: $sessionId) { ...MessageFields }
}
${MESSAGE_FIELDS}`;

export const CANCEL_REPLY = `mutation CancelReply($sessionId: ID!) {
  cancelReply(sessionId: $sessionId)
}`;

export const RATE_MESSAGE = `mutation RateMessage($id: ID!, $input: RateMessageInput!) {
  rateMessage(id: $id, input: $input) { id feedback { rating } }
}`;

export const FORK_SESSION = `mutation EditMessage($input: ForkSessionInput!) {
  forkSession(input: $input) { session { id } }
}`;
