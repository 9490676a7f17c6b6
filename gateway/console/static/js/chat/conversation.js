// The chat page's conversation half: the open session's header (title, model, exports,
// "Sessions" on a phone), its messages, the composer, a role="alert" error region and a
// polite status line. The page's elements are built once; each opened session gets an
// OpenSession (open_session.js) that fills them until another one opens.
//
//   header        conversationHeader() below: h2, model name, Export Markdown / JSON
//   errors        ui.showError banners (with "Retry" where a retry makes sense)
//   scroller      "Load earlier messages" + <ol aria-label="Messages"> (history.js)
//   status        role="status": "Reply complete", "Reply stopped"...
//   composer      composer.js
import { download } from "../api.js";
import { announce, button, clearError, el, errorRegion, statusRegion } from "../ui.js";
import { Composer } from "./composer.js";
import { focusIsLost, showErrorKeepingFocus } from "./focus.js";
import { OpenSession } from "./open_session.js";
import { titleOf } from "./places.js";

export function initConversation(app, root) {
  let current = null; // the OpenSession shown
  const drafts = new Map(); // session id -> unsent text in the composer

  const errors = errorRegion("conversation-errors");
  const status = statusRegion({ visible: false });
  const header = conversationHeader({
    onSessions: () => app.showSessions(),
    onExport: (format, control) => {
      if (!current) return;
      // An error that comes after another session opened is not the new one's to show.
      const exported = current;
      const reportHere = (error, retry) => {
        if (current === exported) report(error, retry);
      };
      exportSession(exported.sessionId, format, control, { report: reportHere, status });
    },
  });
  const notice = el("p", { class: "conversation-notice" });
  // Its clicks are handled by the open session's History.
  const loadButton = button("Load earlier messages", null, { class: "secondary", hidden: true });
  const startNote = el(
    "p",
    { class: "hint", hidden: true },
    "This is the start of the conversation.",
  );
  const top = el("div", { class: "history-top" }, loadButton, startNote);
  const list = el("ol", { class: "messages", "aria-label": "Messages" });
  const scroller = el("div", { class: "conversation-scroll" }, top, list);
  const composer = new Composer({
    onSend: (text) => current && current.send(text),
    onStop: () => current && current.stop(),
  });
  root.replaceChildren(header.element, errors, notice, scroller, status, composer.element);
  const parts = { list, scroller, top, loadButton, startNote, errors, status };

  // Where the focus goes when the control that had it went away: the "Message" field, or
  // the conversation itself when no session shows.
  function focusHome() {
    if (!composer.element.hidden) composer.focus();
    if (focusIsLost()) root.focus({ preventScroll: true });
  }

  // An error banner (role="alert"); "Retry" where a retry makes sense. Its "Retry" and "×"
  // take the banner away: the focus goes on at focusHome() unless the retry put it elsewhere.
  function report(error, retry = null) {
    showErrorKeepingFocus(errors, error, { retry, home: focusHome });
  }

  // Nothing to show in the list: why (no session open, or it is not there).
  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
    scroller.hidden = true;
    composer.setOpen(false);
  }

  function close() {
    if (!current) return;
    // Text on its way to the server is no draft: shown again (without its retry key) it
    // would be sent twice. The server stores it, or the send failed unseen.
    const text = composer.value;
    drafts.set(current.sessionId, current.isBeingSent(text) ? "" : text);
    current.dispose();
    current = null;
  }

  function show(sessionId, { messageId = null } = {}) {
    if (current && current.sessionId === sessionId) {
      // The same session again (a search hit in it, or a click on it in the list).
      if (messageId) current.reveal(messageId);
      else composer.focus();
      return;
    }
    close();
    clearError(errors);
    announce(status, "");
    list.replaceChildren();
    if (!sessionId) {
      header.showNone();
      showNotice("Choose a session from the list, or start a new one.");
      return;
    }
    header.showLoading();
    notice.hidden = true;
    scroller.hidden = false;
    composer.setOpen(true);
    composer.value = drafts.get(sessionId) || "";
    current = new OpenSession({
      app,
      sessionId,
      parts,
      composer,
      header,
      report,
      onMissing: () => {
        current = null;
        clearError(errors); // the live subscription may have said "not found" too
        header.showMissing();
        showNotice(
          "This session does not exist, or it is not yours. Choose another one from the list.",
        );
        if (focusIsLost()) focusHome(); // the "Message" field went
      },
    });
    if (!messageId) composer.focus();
    current.open(messageId);
  }

  // The session's title or model may have changed elsewhere (renamed in the list).
  function refresh() {
    if (current) current.refreshHeader();
  }

  show(null);
  return { show, refresh };
}

function conversationHeader({ onSessions, onExport }) {
  const title = el("h2", { class: "conversation-title" });
  const model = el("span", { class: "conversation-model" });
  const archived = el("span", { class: "badge", hidden: true }, "Archived");
  const exportButton = (format, text) => {
    const control = button(text, () => onExport(format, control), { class: "secondary" });
    return control;
  };
  const tools = el(
    "div",
    { class: "conversation-tools" },
    exportButton("markdown", "Export Markdown"),
    exportButton("json", "Export JSON"),
  );
  // On a phone's width the list and the conversation take turns: this goes back.
  const sessionsButton = button(
    [el("span", { "aria-hidden": "true" }, "‹ "), "Sessions"],
    onSessions,
    { class: "secondary sessions-button" },
  );
  const element = el(
    "header",
    { class: "conversation-header" },
    sessionsButton,
    el(
      "div",
      { class: "conversation-heading" },
      title,
      el("p", { class: "conversation-about" }, model, archived),
    ),
    tools,
  );

  function set(text, { modelName = "", isArchived = false, withTools = false } = {}) {
    title.textContent = text;
    model.textContent = modelName ? `Model: ${modelName}` : "";
    archived.hidden = !isArchived;
    tools.hidden = !withTools;
  }

  return {
    element,
    show: (session) =>
      set(titleOf(session), {
        modelName: session.modelConfig && session.modelConfig.modelName,
        isArchived: session.archived,
        withTools: true,
      }),
    showLoading: () => set("Loading…"),
    showNone: () => set("No session open"),
    showMissing: () => set("Session not found"),
  };
}

// Download the session's export (REST, with the signed-in credential) and hand it to the
// browser as a file: an object URL clicked through a temporary <a download>. The button
// waits meanwhile, aria-disabled rather than disabled: it keeps the focus.
async function exportSession(sessionId, format, control, { report, status }) {
  if (control.getAttribute("aria-disabled") === "true") return; // on its way already
  control.setAttribute("aria-disabled", "true");
  try {
    const path = `/api/v1/sessions/${encodeURIComponent(sessionId)}/export?format=${format}`;
    const { blob, filename } = await download(path);
    saveFile(blob, filename);
    announce(status, `Exported ${filename}`);
  } catch (error) {
    report(error, () => exportSession(sessionId, format, control, { report, status }));
  } finally {
    control.removeAttribute("aria-disabled");
  }
}

function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The download has started from the URL; it is released once the browser is done with it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
