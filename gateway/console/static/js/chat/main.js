// The chat page: sign in, then the sessions sidebar (sessions.js) beside the open
// conversation (conversation.js). The open session is in the address (#/sessions/ID), so a
// reload or a shared link opens it again.
import { showShell } from "../shell.js";
import { signIn } from "../signin.js";
import { showError } from "../ui.js";
import { initConversation } from "./conversation.js";
import { initSessions } from "./sessions.js";

const SESSION_ROUTE = /^#\/sessions\/([^/]+)$/;

function sessionInAddress() {
  const match = SESSION_ROUTE.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

async function start() {
  const me = await signIn(document.getElementById("signin"));
  await showShell(document.getElementById("nav"), me, "chat");
  const chat = document.getElementById("chat");
  chat.hidden = false;

  // What the two halves may ask of the page.
  const app = {
    me,
    // Open a session: the address changes, the conversation shows it, the list marks it.
    openSession(id) {
      const hash = id ? `#/sessions/${encodeURIComponent(id)}` : "#/";
      if (window.location.hash !== hash) {
        window.location.hash = hash; // hashchange below does the rest
      } else {
        show(id);
      }
    },
    // A session was created, renamed, archived, deleted, forked or got a title.
    sessionsChanged() {
      return sessions.refresh();
    },
    currentSessionId: sessionInAddress,
  };
  const sessions = initSessions(app, document.getElementById("sidebar"));
  const conversation = initConversation(app, document.getElementById("conversation"));

  function show(id) {
    chat.classList.toggle("showing-conversation", Boolean(id));
    sessions.select(id);
    conversation.show(id);
  }
  window.addEventListener("hashchange", () => show(sessionInAddress()));
  await sessions.refresh();
  show(sessionInAddress());
}

start().catch((error) => showError(document.getElementById("page-errors"), error));
