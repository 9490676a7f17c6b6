// The chat page: sign in, then the sessions sidebar (sessions.js) beside the open
// conversation (conversation.js). The open session is in the address (#/sessions/ID, or
// #/sessions/ID/messages/MESSAGE_ID to show one message of it), so a reload or a shared
// link opens it again.
import { showShell } from "../shell.js";
import { signIn } from "../signin.js";
import { showError } from "../ui.js";
import { initConversation } from "./conversation.js";
import { initSessions } from "./sessions.js";

const SESSION_ROUTE = /^#\/sessions\/([^/]+)(?:\/messages\/([^/]+))?$/;

// { sessionId, messageId } from the address; nulls when none is open.
function placeInAddress() {
  const match = SESSION_ROUTE.exec(window.location.hash);
  return {
    sessionId: match ? decodeURIComponent(match[1]) : null,
    messageId: match && match[2] ? decodeURIComponent(match[2]) : null,
  };
}

function addressOf(sessionId, messageId) {
  if (!sessionId) return "#/";
  const session = `#/sessions/${encodeURIComponent(sessionId)}`;
  return messageId ? `${session}/messages/${encodeURIComponent(messageId)}` : session;
}

async function start() {
  const me = await signIn(document.getElementById("signin"));
  await showShell(document.getElementById("nav"), me, "chat");
  const chat = document.getElementById("chat");
  chat.hidden = false;

  // What the two halves may ask of the page.
  const app = {
    me,
    // Open a session (null: none), optionally showing one of its messages: the address
    // changes, the conversation shows it, the list marks it.
    openSession(sessionId, { messageId = null } = {}) {
      const hash = addressOf(sessionId, messageId);
      if (window.location.hash !== hash) {
        window.location.hash = hash; // hashchange below does the rest
      } else {
        show(placeInAddress());
      }
    },
    // A session was created, renamed, archived, deleted, forked or got a title.
    sessionsChanged() {
      conversation.refresh(); // the open session's header (a rename in the list)
      return sessions.refresh();
    },
    currentSessionId: () => placeInAddress().sessionId,
  };
  const sessions = initSessions(app, document.getElementById("sidebar"));
  const conversation = initConversation(app, document.getElementById("conversation"));

  // On a phone's width one half shows at a time: the conversation once a session is open.
  function show({ sessionId, messageId }) {
    chat.classList.toggle("showing-conversation", Boolean(sessionId));
    sessions.select(sessionId);
    conversation.show(sessionId, { messageId });
  }
  window.addEventListener("hashchange", () => show(placeInAddress()));
  await sessions.refresh();
  show(placeInAddress());
}

start().catch((error) => showError(document.getElementById("page-errors"), error));
