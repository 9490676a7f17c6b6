// Where the chat page is, and what a session is called: the one place that reads and writes
// the page's address and names an untitled session (main.js, sessions.js, conversation.js).
//
// Address: "#/" (or none) when no session is open, "#/sessions/ID" for an open session,
// "#/sessions/ID/messages/MESSAGE_ID" to show one message of it. Any other fragment (the
// skip link's "#conversation") is not a place: the page stays where it is.

export const UNTITLED = "Untitled session";

const SESSION_ROUTE = /^#\/sessions\/([^/]+)(?:\/messages\/([^/]+))?$/;

// { sessionId, messageId } the address names (nulls: no session open); null when the
// fragment is not one of the page's places.
export function placeInAddress(hash = window.location.hash) {
  if (hash && hash !== "#" && !hash.startsWith("#/")) return null;
  const match = SESSION_ROUTE.exec(hash);
  return {
    sessionId: match ? decodeURIComponent(match[1]) : null,
    messageId: match && match[2] ? decodeURIComponent(match[2]) : null,
  };
}

// The address of a session (null: none), or of one of its messages.
export function addressOf(sessionId, messageId = null) {
  if (!sessionId) return "#/";
  const session = `#/sessions/${encodeURIComponent(sessionId)}`;
  return messageId ? `${session}/messages/${encodeURIComponent(messageId)}` : session;
}

// A session's title as the page shows it.
export function titleOf(session) {
  return (session && session.title) || UNTITLED;
}
