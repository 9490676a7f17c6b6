// The chat page: sign in, then the sessions sidebar (sessions.js) beside the open
// conversation (conversation.js). The open session is in the address (#/sessions/ID, or
// #/sessions/ID/messages/MESSAGE_ID to show one message of it: places.js), so a reload or a
// shared link opens it again. Any other fragment (the skip link's #conversation) moves the
// focus as links do and leaves the open session open.
import { showShell } from "../shell.js";
import { signIn } from "../signin.js";
import { showError } from "../ui.js";
import { initConversation } from "./conversation.js";
import { addressOf, placeInAddress } from "./places.js";
import { initSessions } from "./sessions.js";

// The same session and message.
function samePlace(one, other) {
  return one.sessionId === other.sessionId && one.messageId === other.messageId;
}

async function start() {
  const me = await signIn(document.getElementById("signin"));
  await showShell(document.getElementById("nav"), me, "chat");
  const chat = document.getElementById("chat");
  chat.hidden = false;

  let shown = { sessionId: null, messageId: null }; // the place the page shows

  // What the two halves may ask of the page.
  const app = {
    me,
    // Open a session (null: none), optionally showing one of its messages: the address
    // changes, the conversation shows it, the list marks it. At once (not at the
    // hashchange), so that whoever asked can move the focus into what now shows.
    openSession(sessionId, { messageId = null } = {}) {
      const hash = addressOf(sessionId, messageId);
      if (window.location.hash !== hash) window.location.hash = hash; // its hashchange: shown
      show({ sessionId, messageId });
    },
    // Back to the list (a phone's "Sessions" button, which goes with the conversation): the
    // focus goes to the session that was open, in the list.
    showSessions() {
      const was = shown.sessionId;
      app.openSession(null);
      sessions.focus(was);
    },
    // A session was created, renamed, archived, deleted, forked or got a title.
    sessionsChanged() {
      conversation.refresh(); // the open session's header (a rename in the list)
      return sessions.refresh();
    },
    currentSessionId: () => shown.sessionId,
  };
  const sessions = initSessions(app, document.getElementById("sidebar"));
  const conversation = initConversation(app, document.getElementById("conversation"));

  // On a phone's width one half shows at a time: the conversation once a session is open.
  function show(place) {
    shown = place;
    const { sessionId, messageId } = place;
    chat.classList.toggle("showing-conversation", Boolean(sessionId));
    sessions.select(sessionId);
    conversation.show(sessionId, { messageId });
  }
  window.addEventListener("hashchange", () => {
    const place = placeInAddress();
    if (!place) {
      // Not a place (the skip link): the browser has moved the focus; the address names
      // the open session again, so that a reload opens it.
      const address = addressOf(shown.sessionId, shown.messageId);
      window.history.replaceState(window.history.state, "", address);
      return;
    }
    if (!samePlace(place, shown)) show(place); // not already shown by openSession
  });
  await sessions.refresh();
  show(placeInAddress() || shown);
}

start().catch((error) => showError(document.getElementById("page-errors"), error));
