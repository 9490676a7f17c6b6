// The chat page's sessions sidebar: start a session with a chosen model config, the list of
// sessions (rename, archive, delete, the archived ones on request) and a search across
// every message, whose hits open the session at the message.
//
// Everything is built with ui.el from text: the one piece of HTML the server sends (a
// search snippet) is taken apart in an inert document and only its text and <mark>s are
// copied over (snippetNodes).
import { gql } from "../api.js";
import {
  announce,
  button,
  clearError,
  el,
  errorRegion,
  formatTime,
  replaceChildren,
  statusRegion,
  uniqueId,
} from "../ui.js";
import { showErrorKeepingFocus } from "./focus.js";
import { addressOf, titleOf } from "./places.js";

const PAGE_SIZE = 20;
const LARGEST_PAGE = 100; // the API refuses first > 100
const SEARCH_HITS = 20;
const SEARCH_DELAY_MS = 350; // a pause in typing before the search runs

const MODEL_CONFIGS = `query ModelConfigs {
  modelConfigs { id modelName modelVersion provider isDefault }
}`;
const SESSIONS = `query Sessions($first: Int, $after: String, $archived: Boolean) {
  sessions(first: $first, after: $after, archived: $archived) {
    edges { node { id title archived updatedAt messageCount } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const CREATE_SESSION = `mutation CreateSession($input: CreateSessionInput) {
  createSession(input: $input) { id }
}`;
const UPDATE_SESSION = `mutation UpdateSession($id: ID!, $input: UpdateSessionInput!) {
  updateSession(id: $id, input: $input) { id title archived }
}`;
const DELETE_SESSION = `mutation DeleteSession($id: ID!) { deleteSession(id: $id) }`;
const SEARCH = `query SearchMessages($query: String!, $first: Int) {
  searchMessages(query: $query, first: $first) {
    totalCount
    edges { node { snippet message { id type session { id title } } } }
  }
}`;

// A link's plain click opens in this page (through the app, which also handles an address
// that is already current); a middle or modified click keeps the browser's meaning (a new
// tab), which is why these are real links with real addresses.
function onPlainClick(action) {
  return (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    action();
  };
}

// The server's snippet is HTML: the message's text escaped, each match in <mark>. Parse it
// in an inert document (DOMParser runs no script and loads no image) and copy over only
// text nodes and MARK elements; any other element contributes just its text.
export function snippetNodes(html) {
  const parsed = new DOMParser().parseFromString(html, "text/html");
  return textAndMarks(parsed.body);
}

function textAndMarks(node) {
  const copied = [];
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      copied.push(document.createTextNode(child.data));
    } else if (child.nodeType === Node.ELEMENT_NODE && child.nodeName === "MARK") {
      copied.push(el("mark", {}, textAndMarks(child)));
    } else if (child.nodeType === Node.ELEMENT_NODE) {
      copied.push(...textAndMarks(child));
    }
  }
  return copied;
}

// Rebuilding the list must not throw a keyboard user's focus away (the conversation asks for
// a refresh when a session gets its title, maybe while the user is on another item): note
// the focused control's data-focus-key and focus the same control once rebuilt.
function keepingFocus(container, rebuild) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : null;
  rebuild();
  if (!key) return;
  const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
  if (!again) return;
  again.focus();
  if (again.tagName === "INPUT") again.setSelectionRange(again.value.length, again.value.length);
}

export function initSessions(app, root) {
  const state = {
    archived: false, // which list shows: the archived sessions or the others
    sessions: [], // the loaded ones, newest first
    endCursor: null,
    hasNextPage: false,
    loaded: false,
    currentId: null,
    renamingId: null,
    renameDraft: "",
    listLoad: 0, // bumped by every reload: an older answer is dropped
    search: 0, // the same for searches
    searchTimer: null,
    creating: false,
  };

  const errors = errorRegion("errors sessions-errors");
  // What an action did, for screen readers (the titles stay out: a test or a reader looking
  // for a title on the page should find it once).
  const status = statusRegion({ visible: false });

  // An error banner. Its "Retry" and "×" take it away, and the focus with it: the focus goes
  // on to the open session in the list (or "New session") unless the retry put it elsewhere.
  function report(error, retry = null) {
    showErrorKeepingFocus(errors, error, { retry, home: () => focusHome(state.currentId) });
  }

  // --- New session -------------------------------------------------------------------
  const modelId = uniqueId("session-model");
  // Until the configs load (or if they cannot), the server's default is used.
  const modelSelect = el("select", { id: modelId }, el("option", { value: "" }, "Default model"));
  const newButton = el("button", { type: "submit" }, "New session");
  const newForm = el(
    "form",
    {
      class: "new-session",
      onsubmit: (event) => {
        event.preventDefault();
        createSession();
      },
    },
    el("label", { for: modelId }, "Model"),
    el("div", { class: "row" }, modelSelect, newButton),
  );

  function configLabel(config) {
    const name = `${config.modelName} ${config.modelVersion} (${config.provider})`;
    return config.isDefault ? `${name}, default` : name;
  }

  async function loadModelConfigs() {
    try {
      const { modelConfigs } = await gql(MODEL_CONFIGS);
      if (!modelConfigs.length) return; // keep "Default model": the server picks
      const chosen = modelSelect.value;
      replaceChildren(
        modelSelect,
        modelConfigs.map((config) =>
          el("option", { value: config.id, selected: config.isDefault }, configLabel(config)),
        ),
      );
      if (chosen && modelConfigs.some((config) => config.id === chosen)) {
        modelSelect.value = chosen;
      }
    } catch (error) {
      report(error, loadModelConfigs);
    }
  }

  async function createSession() {
    if (state.creating) return; // a second Enter while the first is on its way
    state.creating = true;
    clearError(errors);
    try {
      const input = modelSelect.value ? { modelConfigId: modelSelect.value } : {};
      const { createSession: created } = await gql(CREATE_SESSION, { input });
      if (state.archived) {
        // A new session is not archived: show the list it is in.
        archivedBox.checked = false;
        state.archived = false;
        state.sessions = [];
      }
      await app.sessionsChanged();
      // The conversation takes the focus (its "Message" field) when it shows the session.
      app.openSession(created.id);
    } catch (error) {
      report(error, createSession);
    } finally {
      state.creating = false;
    }
  }

  // --- Search ------------------------------------------------------------------------
  const searchId = uniqueId("session-search");
  const searchField = el("input", {
    id: searchId,
    type: "search",
    name: "q",
    autocomplete: "off",
    placeholder: "Words in any message",
    oninput: () => {
      clearTimeout(state.searchTimer);
      state.searchTimer = setTimeout(() => runSearch(searchField.value), SEARCH_DELAY_MS);
    },
  });
  const searchForm = el(
    "form",
    {
      role: "search",
      class: "session-search",
      onsubmit: (event) => {
        event.preventDefault();
        clearTimeout(state.searchTimer);
        runSearch(searchField.value);
      },
    },
    el("label", { for: searchId }, "Search"),
    el(
      "div",
      { class: "row" },
      searchField,
      el("button", { type: "submit", class: "secondary" }, "Find"),
    ),
  );
  // The search's outcome: a status line (a live region, always in the page so that screen
  // readers hear each change) and the hits.
  const searchStatus = statusRegion({ className: "hint search-status" });
  const searchList = el("ul", {
    class: "search-results",
    "aria-label": "Search results",
    hidden: true,
  });
  const clearButton = button("Clear search", clearSearch, { class: "quiet", hidden: true });
  const searchArea = el(
    "div",
    { class: "search-area" },
    el("div", { class: "row search-head" }, searchStatus, clearButton),
    searchList,
  );

  // Show a search's state: `text` ("" when no search), its hits.
  function showSearch(text, hits = []) {
    searchStatus.textContent = text;
    clearButton.hidden = !text;
    searchArea.classList.toggle("active", Boolean(text));
    searchList.hidden = hits.length === 0; // an empty list would be announced as one
    replaceChildren(searchList, hits.map(hitItem));
  }

  function clearSearch() {
    clearTimeout(state.searchTimer);
    state.search += 1; // an answer still on its way is not shown
    searchField.value = "";
    showSearch("");
    searchField.focus();
  }

  async function runSearch(text) {
    const query = text.trim();
    const search = ++state.search;
    if (!query) {
      showSearch("");
      return;
    }
    searchStatus.textContent = "Searching…";
    try {
      const { searchMessages } = await gql(SEARCH, { query, first: SEARCH_HITS });
      if (search !== state.search) return;
      showHits(searchMessages);
    } catch (error) {
      if (search !== state.search) return;
      if (error.code === "BAD_USER_INPUT") {
        // e.g. only common words: a sentence beside the field, not an alarm while typing.
        showSearch(`Cannot search for that: ${error.message}`);
      } else {
        showSearch("The search failed.");
        report(error, () => runSearch(text));
      }
    }
  }

  function showHits(connection) {
    const hits = connection.edges.map((edge) => edge.node);
    const count = connection.totalCount;
    if (!hits.length) {
      showSearch("No matches");
    } else if (count > hits.length) {
      showSearch(`The best ${hits.length} of ${count} matches`, hits);
    } else {
      showSearch(`${count} ${count === 1 ? "match" : "matches"}`, hits);
    }
  }

  function hitItem(hit) {
    const { message } = hit;
    const { session } = message;
    return el(
      "li",
      {},
      el(
        "a",
        {
          class: "hit",
          href: addressOf(session.id, message.id),
          dataset: { sessionId: session.id, messageId: message.id },
          onclick: onPlainClick(() => app.openSession(session.id, { messageId: message.id })),
        },
        el(
          "span",
          { class: "hit-head" },
          el("span", { class: "hit-title" }, titleOf(session)),
          el("span", { class: "hit-who" }, message.type === "AI" ? "Reply" : "You"),
        ),
        el("span", { class: "hit-snippet" }, snippetNodes(hit.snippet)),
      ),
    );
  }

  // --- The list ----------------------------------------------------------------------
  const archivedBox = el("input", {
    type: "checkbox",
    onchange: () => {
      state.archived = archivedBox.checked;
      state.sessions = []; // the other list starts at its first page
      state.renamingId = null;
      announce(status, state.archived ? "Showing archived sessions" : "Showing sessions");
      loadSessions();
    },
  });
  const list = el("ul", { class: "session-list", "aria-label": "Sessions list" });
  const emptyNote = el("p", { class: "hint", hidden: true });
  const moreButton = button("Load more", loadMore, { class: "secondary more", hidden: true });

  function sessionItem(session, index) {
    const current = session.id === state.currentId;
    const item = el("li", {
      class: current ? "session-item current" : "session-item",
      dataset: { sessionId: session.id },
    });
    if (session.id === state.renamingId) {
      replaceChildren(item, renameForm(session));
      return item;
    }
    const titleId = uniqueId("session-title");
    const metaId = uniqueId("session-meta");
    const count = session.messageCount;
    const messages = `${count} ${count === 1 ? "message" : "messages"}`;
    const action = (label, onclick, className = "quiet") =>
      button(label, onclick, {
        class: className,
        "aria-describedby": titleId, // "Rename", described by which session
        dataset: { focusKey: `${session.id}:${label}` },
      });
    replaceChildren(
      item,
      el(
        "a",
        {
          id: titleId,
          class: "session-open",
          href: addressOf(session.id),
          "aria-current": current ? "true" : null,
          "aria-describedby": metaId,
          dataset: { focusKey: `${session.id}:open`, sessionId: session.id },
          onclick: onPlainClick(() => app.openSession(session.id)),
        },
        titleOf(session),
      ),
      el(
        "span",
        { id: metaId, class: "session-meta" },
        `${formatTime(session.updatedAt)} · ${messages}`,
      ),
      el(
        "div",
        { class: "session-actions" },
        action("Rename", () => startRename(session)),
        action(session.archived ? "Unarchive" : "Archive", () => toggleArchived(session, index)),
        action("Delete", () => removeSession(session, index), "quiet danger"),
      ),
    );
    return item;
  }

  function renderList() {
    keepingFocus(root, () => {
      replaceChildren(list, state.sessions.map(sessionItem));
      list.hidden = state.sessions.length === 0;
      emptyNote.hidden = state.sessions.length > 0 || !state.loaded;
      emptyNote.textContent = state.archived
        ? "No archived sessions."
        : "No sessions yet: start one with New session.";
      moreButton.hidden = !state.hasNextPage;
    });
  }

  // Reload the list as far as it was shown (a rename on page 3 keeps page 3 in view).
  async function loadSessions() {
    const load = ++state.listLoad;
    const first = Math.min(LARGEST_PAGE, Math.max(PAGE_SIZE, state.sessions.length));
    list.setAttribute("aria-busy", "true");
    try {
      const { sessions } = await gql(SESSIONS, { first, after: null, archived: state.archived });
      if (load !== state.listLoad) return;
      state.sessions = sessions.edges.map((edge) => edge.node);
      state.endCursor = sessions.pageInfo.endCursor;
      state.hasNextPage = sessions.pageInfo.hasNextPage;
      state.loaded = true;
      renderList();
    } catch (error) {
      if (load !== state.listLoad) return;
      report(error, loadSessions);
    } finally {
      if (load === state.listLoad) list.removeAttribute("aria-busy");
    }
  }

  async function loadMore() {
    const load = state.listLoad; // a reload meanwhile makes this page stale
    const shownBefore = state.sessions.length;
    try {
      const { sessions } = await gql(SESSIONS, {
        first: PAGE_SIZE,
        after: state.endCursor,
        archived: state.archived,
      });
      if (load !== state.listLoad) return;
      const known = new Set(state.sessions.map((session) => session.id));
      const added = sessions.edges.map((edge) => edge.node).filter((node) => !known.has(node.id));
      state.sessions = state.sessions.concat(added);
      state.endCursor = sessions.pageInfo.endCursor;
      state.hasNextPage = sessions.pageInfo.hasNextPage;
      renderList();
      // The button went with the last page: go on at the first session it brought.
      if (!state.hasNextPage && added.length) focusItem(shownBefore);
    } catch (error) {
      report(error, loadMore);
    }
  }

  // Focus the session link at `index` (or the last one); "New session" when none is left.
  function focusItem(index) {
    const links = list.querySelectorAll("a.session-open");
    if (links.length) {
      links[Math.min(index, links.length - 1)].focus();
    } else {
      newButton.focus();
    }
  }

  // The session's link in the list (when it is listed), else "New session".
  function focusHome(sessionId) {
    const link =
      sessionId &&
      list.querySelector(`a.session-open[data-session-id="${CSS.escape(sessionId)}"]`);
    (link || newButton).focus();
  }

  function focusControl(sessionId, label) {
    const key = `${sessionId}:${label}`;
    const control = list.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (control) control.focus();
  }

  // --- Rename, archive, delete ----------------------------------------------------------
  function renameForm(session) {
    const fieldId = uniqueId("session-rename");
    const field = el("input", {
      id: fieldId,
      name: "title",
      maxlength: "200",
      autocomplete: "off",
      value: state.renameDraft,
      dataset: { focusKey: `${session.id}:title` },
      oninput: () => {
        state.renameDraft = field.value;
      },
      onkeydown: (event) => {
        if (event.key === "Escape") {
          event.preventDefault();
          cancelRename(session);
        }
      },
    });
    return el(
      "form",
      {
        class: "rename-form",
        onsubmit: (event) => {
          event.preventDefault();
          saveTitle(session, field.value);
        },
      },
      el("label", { for: fieldId }, "Title"),
      field,
      el(
        "div",
        { class: "row" },
        el("button", { type: "submit" }, "Save"),
        button("Cancel", () => cancelRename(session), { class: "secondary" }),
      ),
    );
  }

  function startRename(session) {
    state.renamingId = session.id;
    state.renameDraft = session.title || "";
    renderList();
    const field = list.querySelector(`[data-focus-key="${CSS.escape(`${session.id}:title`)}"]`);
    if (field) {
      field.focus();
      field.select();
    }
  }

  function cancelRename(session) {
    state.renamingId = null;
    renderList();
    focusControl(session.id, "Rename");
  }

  async function saveTitle(session, text) {
    const title = text.trim() || null; // blank: back to untitled
    clearError(errors);
    try {
      await gql(UPDATE_SESSION, { id: session.id, input: { title } });
      state.renamingId = null;
      await app.sessionsChanged();
      focusControl(session.id, "open");
      announce(status, "Session renamed");
    } catch (error) {
      report(error); // the form stays open with what was typed
    }
  }

  async function toggleArchived(session, index) {
    const archived = !session.archived;
    clearError(errors);
    try {
      await gql(UPDATE_SESSION, { id: session.id, input: { archived } });
      await app.sessionsChanged();
      focusItem(index); // it left this list: its neighbour takes its place
      announce(status, archived ? "Session archived" : "Session unarchived");
    } catch (error) {
      report(error, () => toggleArchived(session, index));
    }
  }

  async function removeSession(session, index) {
    const question = `Delete "${titleOf(session)}" and all its messages? This cannot be undone.`;
    if (!window.confirm(question)) return;
    clearError(errors);
    try {
      await gql(DELETE_SESSION, { id: session.id });
      if (app.currentSessionId() === session.id) app.openSession(null);
      await app.sessionsChanged();
      focusItem(index);
      announce(status, "Session deleted");
    } catch (error) {
      report(error, () => removeSession(session, index));
    }
  }

  // --- The sidebar -----------------------------------------------------------------------
  replaceChildren(
    root,
    el(
      "div",
      { class: "sessions" },
      el("h2", {}, "Sessions"),
      errors,
      status,
      newForm,
      el("div", { class: "search-box" }, searchForm, searchArea),
      el("label", { class: "check" }, archivedBox, "Show archived"),
      list,
      emptyNote,
      moreButton,
    ),
  );

  let configsLoaded = null;
  return {
    // Reload the list (keeping the archived filter); never rejects: errors show here.
    async refresh() {
      if (!configsLoaded) configsLoaded = loadModelConfigs();
      await Promise.all([loadSessions(), configsLoaded]);
    },
    // Focus the session's link in the list (it was open: a phone's "Sessions" button went
    // with the conversation), or "New session" when it is not listed.
    focus: focusHome,
    // Mark the open session (null: none).
    select(sessionId) {
      state.currentId = sessionId;
      for (const link of list.querySelectorAll("a.session-open")) {
        const current = link.dataset.sessionId === sessionId;
        if (current) link.setAttribute("aria-current", "true");
        else link.removeAttribute("aria-current");
        link.closest("li").classList.toggle("current", current);
      }
    },
  };
}
