// The open session's history: the latest page on opening, older pages when the reader
// scrolls up to the top (an IntersectionObserver on the area above the list, with a
// "Load earlier messages" button for keyboards), and the scroll position kept where the
// reader is: still when older messages are put above, at the bottom while new ones arrive
// if the reader was at the bottom.
import { gql } from "../api.js";
import { HISTORY_PAGE } from "./queries.js";

// Older messages start loading this far before the top is reached.
const NEAR_TOP_PX = 300;
// Within this distance of the bottom the reader "is at the bottom" and stays there.
const NEAR_BOTTOM_PX = 48;
// A message to show (a search hit) is looked for in at most this many older pages.
const MAX_REVEAL_PAGES = 20;

export class History {
  // parts: { scroller, top, loadButton, startNote } (page elements shared by every session);
  // messages: the MessageList; onError(error, retry); onMissing(): the session went (deleted
  // meanwhile, in another tab).
  constructor({ sessionId, parts, messages, onError, onMissing }) {
    this.sessionId = sessionId;
    this.parts = parts;
    this.messages = messages;
    this.onError = onError;
    this.onMissing = onMissing;
    this.cursor = null; // startCursor of the oldest page loaded
    this.hasPrevious = false;
    this.ready = false; // the latest page is shown
    this.loading = null; // the page being loaded (one at a time)
    // The last page could not be read: scrolling does not ask again (its error is shown
    // with "Retry"); "Retry", "Load earlier messages" or a search hit do.
    this.failed = false;
    this.disposed = false;
    this.pinned = true; // the reader is at the bottom
    this.focusAfterLoad = false; // "Load earlier messages" was pressed: focus what it brings
    this.showTop();
    this.watchScrolling();
  }

  dispose() {
    this.disposed = true;
    this.intersections.disconnect();
    this.resizes.disconnect();
    this.parts.scroller.removeEventListener("scroll", this.onScroll);
    this.parts.loadButton.onclick = null;
  }

  // The newest page; resolves with the session (header fields), or null if it is not
  // there (or not the caller's).
  async loadLatest() {
    const data = await gql(HISTORY_PAGE, { id: this.sessionId, before: null });
    if (this.disposed || !data.session) return data.session;
    this.takePage(data.session.messages);
    this.ready = true;
    this.scrollToBottom();
    this.showTop();
    this.loadMoreIfShort();
    return data.session;
  }

  // Load the page before the oldest one shown. Resolves true if one was added, false if
  // none was (there is none, the session went, or this history is closed), null if it could
  // not be read: its error is shown once, with "Retry" (`retry`, else this load again), and
  // nothing loads by itself until then. A load already on its way is the one waited for.
  loadOlder(retry = null) {
    if (!this.ready || !this.hasPrevious || this.disposed) return Promise.resolve(false);
    if (!this.loading) {
      const before = this.messages.list.firstElementChild;
      const done = (added) => {
        this.loading = null;
        // Another session is shown now: the page's shared parts are not this one's.
        if (this.disposed) return added;
        this.failed = added === null;
        const buttonHadFocus = document.activeElement === this.parts.loadButton;
        this.showTop();
        // Pressed, or focused while the page came by scrolling (and gone with the last
        // page): the focus goes on to the first message brought, where reading goes on.
        const focus = this.focusAfterLoad || (buttonHadFocus && this.parts.loadButton.hidden);
        this.focusAfterLoad = false;
        if (added && focus) this.focusFirst(before);
        if (added) this.loadMoreIfShort();
        return added;
      };
      this.failed = false;
      this.loading = this.fetchOlder(retry || (() => this.loadOlder())).then(done, (error) => {
        done(null);
        throw error;
      });
      this.showTop();
    }
    return this.loading;
  }

  // Scrolled near the top: the page before, unless the last one failed (until "Retry").
  loadOlderByScrolling() {
    if (!this.failed) this.loadOlder();
  }

  // Focus the first message of the list, unless it is `before` (nothing came above it).
  focusFirst(before) {
    const first = this.messages.list.firstElementChild;
    const article = first && first !== before ? first.querySelector("article") : null;
    if (!article) return;
    article.tabIndex = -1;
    this.pinned = false;
    article.focus(); // scrolled into view
  }

  // One older page: true if added, false if not (closed, or the session went: onMissing),
  // null if it could not be read (the error is shown, with `retry`).
  async fetchOlder(retry) {
    let data;
    try {
      data = await gql(HISTORY_PAGE, { id: this.sessionId, before: this.cursor });
    } catch (error) {
      if (this.disposed) return false;
      this.onError(error, retry);
      return null;
    }
    if (this.disposed) return false;
    if (!data.session) {
      this.onMissing();
      return false;
    }
    this.keepingPosition(() => this.takePage(data.session.messages));
    return true;
  }

  // After a gap in the live updates: the latest page again, what is new added at the end.
  async catchUp() {
    const data = await gql(HISTORY_PAGE, { id: this.sessionId, before: null });
    if (this.disposed || !data.session) return;
    for (const edge of data.session.messages.edges) this.messages.accept(edge.node);
  }

  takePage(connection) {
    this.messages.prependPage(connection.edges.map((edge) => edge.node));
    this.cursor = connection.pageInfo.startCursor || this.cursor;
    this.hasPrevious = connection.pageInfo.hasPreviousPage;
  }

  // Scroll to a message (a search hit), loading older pages until it is there; it is
  // highlighted and focused. Resolves with its view; null if it is not in the session;
  // undefined if an older page could not be read (its error is shown, with `retry`).
  async reveal(messageId, { retry = null } = {}) {
    for (let pages = 0; pages <= MAX_REVEAL_PAGES; pages += 1) {
      const view = this.messages.find(messageId);
      if (view) {
        this.highlight(view);
        return view;
      }
      if (!this.hasPrevious) break;
      const added = await this.loadOlder(retry);
      if (added === null) return undefined;
      if (!added || this.disposed) break;
    }
    return null;
  }

  highlight(view) {
    for (const shown of this.parts.scroller.querySelectorAll("article.highlighted")) {
      shown.classList.remove("highlighted");
    }
    view.article.classList.add("highlighted");
    view.article.tabIndex = -1;
    this.pinned = false;
    view.article.scrollIntoView({ block: "center" });
    view.article.focus({ preventScroll: true });
  }

  scrollToBottom() {
    const { scroller } = this.parts;
    scroller.scrollTop = scroller.scrollHeight;
    this.pinned = true;
  }

  // Run `change` (which adds messages above) without moving what the reader sees.
  keepingPosition(change) {
    const { scroller } = this.parts;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    change();
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  }

  // While the top is still in view after a page (a short page on a tall screen), the
  // observer will not fire again: go on loading.
  loadMoreIfShort() {
    if (this.disposed || !this.hasPrevious) return;
    if (this.parts.scroller.scrollTop < NEAR_TOP_PX) this.loadOlderByScrolling();
  }

  watchScrolling() {
    const { scroller, top, loadButton } = this.parts;
    this.intersections = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadOlderByScrolling();
      },
      { root: scroller, rootMargin: `${NEAR_TOP_PX}px 0px 0px 0px` },
    );
    this.intersections.observe(top);
    // Messages growing (a reply streaming in, new messages) keep a reader at the bottom there.
    this.resizes = new ResizeObserver(() => {
      if (this.pinned && !this.disposed) scroller.scrollTop = scroller.scrollHeight;
    });
    this.resizes.observe(this.messages.list);
    this.onScroll = () => {
      this.pinned =
        scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    };
    scroller.addEventListener("scroll", this.onScroll, { passive: true });
    loadButton.onclick = () => this.loadOlderByButton();
  }

  // "Load earlier messages" (a keyboard's way up): the page loads (or is loading already:
  // the same one) and the focus goes to its first message.
  loadOlderByButton() {
    if (!this.ready || !this.hasPrevious || this.disposed) return;
    this.focusAfterLoad = true;
    this.loadOlder();
  }

  // The area above the list: a button while older messages exist, a note at the start.
  // While a page loads the button waits aria-disabled (not disabled: it keeps the focus).
  showTop() {
    const { loadButton, startNote } = this.parts;
    loadButton.hidden = !this.ready || !this.hasPrevious;
    if (this.loading) loadButton.setAttribute("aria-disabled", "true");
    else loadButton.removeAttribute("aria-disabled");
    loadButton.textContent = this.loading ? "Loading earlier messages…" : "Load earlier messages";
    startNote.hidden = !this.ready || this.hasPrevious || this.messages.isEmpty();
  }
}
