// A streamed turn: a send (sendMessageStream) or a regenerate (regenerateReplyStream).
//
// The server streams the stored user message, then the reply's pieces (MessageDelta), then
// the stored reply; what arrives is routed to the views (through the MessageList), the
// composer and the status line. A failed turn offers "Retry" with the SAME retry key
// (clientMessageId): the server then stores nothing twice, and a user message stored
// before the model failed is answered again.
import { subscribe } from "../api.js";
import { announce } from "../ui.js";
import { REGENERATE_STREAM, SEND_STREAM } from "./queries.js";

// How the server ends a turn stopped (cancelReply) before the model said a word: an
// INTERNAL_SERVER_ERROR whose message is db/services/reply_runs.py's STOP_REQUESTED reason
// followed by " before the model replied" (db/errors.py ReplyStopped). A shutdown stops a
// turn with another reason: that one is an error like any other.
const STOPPED_BEFORE_REPLY = /cancelled on request before the model replied/;

// The error is the server's answer to this turn's own stop request.
function isStopBeforeReply(error) {
  return (
    Boolean(error) &&
    error.code === "INTERNAL_SERVER_ERROR" &&
    STOPPED_BEFORE_REPLY.test(error.message || "")
  );
}

const KINDS = {
  send: { document: SEND_STREAM, field: "sendMessageStream" },
  regenerate: { document: REGENERATE_STREAM, field: "regenerateReplyStream" },
};

export class Turn {
  // session: the OpenSession (messages, composer, status, ...); kind: "send" | "regenerate";
  // input: the subscription's input; content: the text sent (a send).
  constructor(session, kind, input, { content = null, knownUserId = null } = {}) {
    this.session = session;
    this.kind = kind;
    this.input = input;
    this.content = content;
    this.userId = knownUserId; // the stored user message, once known
    this.pendingView = null; // the user message shown before the server stored it
    this.replyView = null; // the slot the reply streams into
    this.accepted = false; // the server stored (or found) the user message
    this.replied = false;
    this.stopRequested = false;
    this.finished = false;
    this.dispose = null;
  }

  start() {
    const { session } = this;
    if (this.kind === "send" && !(this.userId && session.messages.has(this.userId))) {
      this.pendingView = session.messages.appendPending(this.content);
    }
    session.history.scrollToBottom();
    session.changed();
    announce(session.parts.status, this.kind === "send" ? "Sending…" : "Asking again…");
    const { document, field } = KINDS[this.kind];
    this.dispose = subscribe(
      document,
      { input: this.input },
      {
        next: (data) => this.onEvent(data[field]),
        error: (error) => this.fail(error),
        complete: () => this.finish(),
      },
    );
  }

  // The session is closing (another one opens): the reply goes on on the server, and
  // comes back with the history when this session is opened again.
  leave() {
    this.finished = true;
    if (this.dispose) this.dispose();
  }

  onEvent(event) {
    if (this.finished || !event) return;
    if (event.__typename === "MessageDelta") this.onPiece(event);
    else if (event.type === "USER") this.onUserMessage(event);
    else this.onReply(event);
  }

  onUserMessage(message) {
    const { session } = this;
    this.accepted = true;
    this.userId = message.id;
    if (this.pendingView) {
      session.messages.adopt(this.pendingView, message);
      this.pendingView = null;
    } else {
      session.messages.accept(message);
    }
    if (this.kind === "send") {
      session.composer.clearIf(this.content);
      session.forgetFailedSend(this.content);
    }
    this.replyView = session.messages.slotFor(message.id);
    session.changed();
    announce(session.parts.status, "Waiting for the reply…");
  }

  onPiece(piece) {
    if (!this.replyView) {
      // No user message came first (it should): the reply goes after everything shown.
      this.replyView = this.session.messages.slotFor(this.userId || piece.messageId);
    }
    this.session.messages.addPiece(this.replyView, piece);
  }

  onReply(message) {
    const { session } = this;
    this.replied = true;
    this.replyView = session.messages.accept(message);
    const stopped = message.metadata && message.metadata.finish_reason === "cancelled";
    announce(session.parts.status, stopped ? "Reply stopped" : "Reply complete");
    session.changed();
  }

  finish() {
    if (this.finished) return;
    this.finished = true;
    if (!this.replied) this.dropUnfinished();
    this.session.turnEnded(this);
  }

  fail(error) {
    if (this.finished) return;
    this.finished = true;
    this.dropUnfinished();
    const { session } = this;
    if (!this.accepted && this.pendingView) {
      // Nothing was stored: the text is still in the composer for another try.
      session.messages.remove(this.pendingView);
      this.pendingView = null;
    }
    session.turnEnded(this);
    if (this.stopRequested && isStopBeforeReply(error)) {
      // Stopped as asked, before the model said anything: nothing to show but that.
      announce(session.parts.status, "Stopped before the reply began");
      return;
    }
    announce(session.parts.status, "The reply failed");
    session.showError(error, () => session.retry(this));
  }

  // A reply that streamed in part but was not stored goes; a regenerated slot shows its
  // stored reply again.
  dropUnfinished() {
    const view = this.replyView;
    if (view && view.streaming && !view.abandonStream()) this.session.messages.remove(view);
    else if (view && !view.hasStored() && !view.streaming) this.session.messages.remove(view);
  }
}
