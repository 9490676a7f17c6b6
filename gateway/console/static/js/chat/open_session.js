// The session open in the conversation: its history (history.js) in the list
// (message_list.js), its live updates (ONE messageAdded subscription while it is open),
// its turns (turns.js), and what the reader does to its messages: rate, regenerate, edit.
//
// Everything asynchronous checks `disposed`: answers that arrive after another session
// was opened are dropped.
import { ApiError, RECONNECTED, gql, newClientMessageId, subscribe } from "../api.js";
import { announce, clearError } from "../ui.js";
import { History } from "./history.js";
import { MessageList } from "./message_list.js";
import {
  CANCEL_REPLY,
  FORK_SESSION,
  MESSAGE_ADDED,
  RATE_MESSAGE,
  SESSION_HEADER,
} from "./queries.js";
import { Turn } from "./turns.js";

export class OpenSession {
  // parts: the page's elements { list, scroller, top, loadButton, startNote, errors, status };
  // composer: the Composer; header: { show(session) }; report(error, retry): show an error
  // banner in parts.errors; onMissing(): the session is not there.
  constructor({ app, sessionId, parts, composer, header, report, onMissing }) {
    this.app = app;
    this.sessionId = sessionId;
    this.parts = parts;
    this.composer = composer;
    this.header = header;
    this.report = report;
    this.onMissing = onMissing;
    this.disposed = false;
    this.turn = null; // the turn running (one at a time)
    this.unacceptedSend = null; // { content, clientMessageId } of a send not stored yet
    this.stopLive = null;
    // graphql-ws re-subscribes by itself after a dropped connection (api.js dispatches
    // RECONNECTED then): what was stored during the gap is read from the history.
    this.onReconnected = () => this.catchUp();
    this.backlog = []; // live messages that came before the first page
    this.toldSessions = false;
    this.opened = Promise.resolve(false);
    this.messages = new MessageList(parts.list, {
      onEdit: (view, content) => this.edit(view, content),
      onRate: (view, variantId, rating) => this.rate(view, variantId, rating),
      onRegenerate: () => this.regenerate(),
      onVariant: (position, count) =>
        announce(this.parts.status, `Variant ${position} of ${count}`),
    });
    this.history = new History({
      sessionId,
      parts,
      messages: this.messages,
      onError: (error, retry) => this.showError(error, retry),
      onMissing: () => this.gone(),
    });
  }

  // Show the latest messages (and `messageId`, a search hit, if given); live from now on.
  // Resolves true once shown.
  open(messageId = null) {
    this.opened = this.load(messageId);
    return this.opened;
  }

  async load(messageId) {
    // Following first, then reading: a message stored in between is not missed (it may
    // come twice, and is shown once).
    this.followLive();
    let session;
    try {
      session = await this.history.loadLatest();
    } catch (error) {
      if (!this.disposed) this.showError(error, () => this.open(messageId));
      return false;
    }
    if (this.disposed) return false;
    if (!session) {
      this.gone();
      return false;
    }
    this.header.show(session);
    for (const message of this.backlog.splice(0)) this.onLive(message);
    this.changed();
    if (messageId) await this.showMessage(messageId);
    return true;
  }

  // A message of this session asked for (a search hit): once the session is shown.
  async reveal(messageId) {
    if (await this.opened) await this.showMessage(messageId);
  }

  async showMessage(messageId) {
    // A page that could not be read shows its own error, whose "Retry" goes on looking.
    const retry = () => this.showMessage(messageId);
    const view = await this.history.reveal(messageId, { retry });
    if (view === null && !this.disposed) {
      const gone = new ApiError("That message is not in this session (it may have been deleted).", {
        code: "NOT_FOUND",
      });
      this.showError(gone);
    }
  }

  // The session is not there (or not the caller's): deleted, perhaps in another tab.
  gone() {
    if (this.disposed) return;
    this.dispose();
    this.onMissing();
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    window.removeEventListener(RECONNECTED, this.onReconnected);
    if (this.stopLive) this.stopLive();
    if (this.turn) this.turn.leave();
    this.turn = null;
    this.composer.setStreaming(false);
    this.history.dispose();
  }

  // --- live updates

  followLive() {
    if (this.stopLive) return;
    window.removeEventListener(RECONNECTED, this.onReconnected); // added once
    window.addEventListener(RECONNECTED, this.onReconnected);
    this.stopLive = subscribe(
      MESSAGE_ADDED,
      { sessionId: this.sessionId },
      {
        next: (data) => this.onLive(data.messageAdded),
        error: (error) => {
          this.stopLive = null;
          if (!this.disposed) this.showError(error, () => this.resumeLive());
        },
        complete: () => {
          this.stopLive = null;
        },
      },
    );
  }

  // After the live subscription failed: follow again, and read what came meanwhile.
  resumeLive() {
    this.followLive();
    return this.catchUp();
  }

  // Live updates were missed (the subscription failed, or the WebSocket dropped and
  // graphql-ws subscribed again silently): read the latest page, add what is not shown.
  async catchUp() {
    // Once the session is shown: its first page may have been read during the gap too.
    if (this.disposed || !(await this.opened) || this.disposed) return;
    try {
      await this.history.catchUp();
      if (!this.disposed) this.changed();
    } catch (error) {
      if (!this.disposed) this.showError(error, () => this.catchUp());
    }
  }

  onLive(message) {
    if (this.disposed || !message) return;
    if (!this.history.ready) {
      this.backlog.push(message);
      return;
    }
    const turn = this.turn;
    if (
      turn &&
      turn.pendingView &&
      message.type === "USER" &&
      !this.messages.has(message.id) &&
      message.content === turn.content
    ) {
      // This tab's own send, announced here before its stream said it was stored.
      this.messages.adopt(turn.pendingView, message);
      turn.pendingView = null;
    } else {
      this.messages.accept(message);
    }
    this.changed();
  }

  // --- turns

  send(content, { clientMessageId = null, knownUserId = null } = {}) {
    if (this.turn || this.disposed) return;
    // Sending the same text again after a send the server never stored reuses its retry
    // key: whatever happened to the first, the message is stored once.
    const key =
      clientMessageId ||
      (this.unacceptedSend && this.unacceptedSend.content === content
        ? this.unacceptedSend.clientMessageId
        : newClientMessageId());
    this.unacceptedSend = { content, clientMessageId: key };
    const input = { sessionId: this.sessionId, content, clientMessageId: key };
    this.startTurn(new Turn(this, "send", input, { content, knownUserId }));
  }

  // `content` is the text of the send on its way (not stored yet, not failed).
  isBeingSent(content) {
    const turn = this.turn;
    return Boolean(turn && turn.kind === "send" && !turn.accepted && turn.content === content);
  }

  forgetFailedSend(content) {
    if (this.unacceptedSend && this.unacceptedSend.content === content) this.unacceptedSend = null;
  }

  regenerate(clientMessageId = newClientMessageId()) {
    if (this.turn || this.disposed) return;
    this.startTurn(new Turn(this, "regenerate", { sessionId: this.sessionId, clientMessageId }));
  }

  // "Retry" after a failed turn: the same request with the same retry key.
  retry(turn) {
    if (turn.kind === "send") {
      this.send(turn.content, {
        clientMessageId: turn.input.clientMessageId,
        knownUserId: turn.userId,
      });
    } else {
      this.regenerate(turn.input.clientMessageId);
    }
  }

  startTurn(turn) {
    clearError(this.parts.errors);
    this.turn = turn;
    this.composer.setStreaming(true);
    turn.start();
  }

  turnEnded(turn) {
    if (this.turn !== turn) return;
    this.turn = null;
    this.composer.setStreaming(false);
    this.changed();
    if (turn.kind === "send" && turn.accepted) this.firstSendStored();
  }

  async stop() {
    const turn = this.turn;
    if (!turn) return;
    turn.stopRequested = true;
    announce(this.parts.status, "Stopping…");
    try {
      const data = await gql(CANCEL_REPLY, { sessionId: this.sessionId });
      if (!data.cancelReply && !turn.finished) {
        // Not running yet (or already stored): the turn goes on and may be stopped again.
        turn.stopRequested = false;
        announce(this.parts.status, "No reply was being written yet");
      }
    } catch (error) {
      turn.stopRequested = false;
      if (!this.disposed) this.showError(error, () => this.stop());
    } finally {
      this.composer.stopReplied();
    }
  }

  // After the first send stored here the session may have a title (made from its first
  // message) and more messages: the sessions list and, through it, the header (main.js
  // calls refresh()) read it again, once.
  firstSendStored() {
    if (this.toldSessions || this.disposed) return;
    this.toldSessions = true;
    this.app.sessionsChanged();
  }

  async refreshHeader() {
    try {
      const data = await gql(SESSION_HEADER, { id: this.sessionId });
      if (!this.disposed && data.session) this.header.show(data.session);
    } catch (error) {
      // The header keeps what it showed; the next change tries again.
    }
  }

  // Something changed in the list: only its last reply offers "Regenerate".
  changed() {
    this.messages.markLatest(Boolean(this.turn));
    this.history.showTop();
  }

  // --- what the reader does to a message

  async rate(view, variantId, rating) {
    try {
      const data = await gql(RATE_MESSAGE, { id: variantId, input: { rating } });
      const feedback = data.rateMessage.feedback;
      view.setRating(variantId, feedback ? feedback.rating : null);
      const said = { UP: "Rated as a good reply", DOWN: "Rated as a bad reply" };
      announce(this.parts.status, said[feedback && feedback.rating] || "Rating cleared");
    } catch (error) {
      if (!this.disposed) this.showError(error, () => this.rate(view, variantId, rating));
    }
  }

  // "Save and send" of an edited user message: a fork of the session with the new text,
  // answered there; the page then opens the fork (this session stays as it was).
  async edit(view, content) {
    // A retry of the same text keeps its key: the server returns the same fork.
    if (!view.forkKey || view.forkKey.content !== content) {
      view.forkKey = { content, clientMessageId: newClientMessageId() };
    }
    clearError(this.parts.errors);
    announce(this.parts.status, "Sending the edited message…");
    let fork;
    try {
      const input = { messageId: view.id, content, clientMessageId: view.forkKey.clientMessageId };
      fork = (await gql(FORK_SESSION, { input })).forkSession.session;
    } catch (error) {
      if (!this.disposed) this.showError(error, () => this.edit(view, content));
      return;
    }
    try {
      await this.app.sessionsChanged();
    } catch (error) {
      // The list shows the fork at its next refresh; opening it matters more.
    }
    // Unless the reader has opened another session meanwhile: that one stays.
    if (!this.disposed) this.app.openSession(fork.id);
  }

  showError(error, retry = null) {
    this.report(error, retry);
  }
}
