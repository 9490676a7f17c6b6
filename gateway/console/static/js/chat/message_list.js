// The history list (<ol aria-label="Messages">) of the open session: which view shows
// which message, so that a message arriving twice (a send's own stream and messageAdded,
// a page overlapping live messages) is shown once, and a regenerated reply takes the place
// of the reply it replaces.
//
// Replies are kept in "slots" keyed by the user message they answer: every reply to one
// user message (its variants) is one item of the list, as in the server's history.
import { ReplyView, UserMessageView } from "./message_view.js";

export class MessageList {
  // callbacks: onEdit(view, content), onRate(view, variantId, rating), onRegenerate(view),
  // onVariant(position, count)
  constructor(list, callbacks) {
    this.list = list;
    this.callbacks = callbacks;
    this.byId = new Map(); // id of every message shown (variants included) -> its view
    this.slots = new Map(); // id of a user message -> the ReplyView answering it
    this.viewOf = new WeakMap(); // <li> -> its view
    this.replies = new Set(); // every ReplyView in the list
  }

  has(id) {
    return this.byId.has(id);
  }

  isEmpty() {
    return this.list.childElementCount === 0;
  }

  // A stored message from anywhere: shown once, in its place. Returns its view.
  accept(message) {
    const known = this.byId.get(message.id);
    if (known) {
      this.refresh(known, message);
      return known;
    }
    if (message.type === "USER") {
      const view = this.newUserView(message);
      this.list.append(view.item);
      return view;
    }
    return this.acceptReply(message);
  }

  // A page of older messages (oldest first), put before everything shown.
  prependPage(messages) {
    const items = [];
    for (const message of messages) {
      if (this.byId.has(message.id)) continue;
      if (message.type === "USER") {
        items.push(this.newUserView(message).item);
      } else {
        const questionId = message.replyTo && message.replyTo.id;
        if (questionId && this.slots.has(questionId)) continue; // answered further down already
        const view = this.newReplyView(questionId);
        view.showStored(message);
        this.index(view);
        items.push(view.item);
      }
    }
    this.list.prepend(...items);
    return items.length;
  }

  // A message being sent, shown before the server has stored it.
  appendPending(content) {
    const view = new UserMessageView(null, {
      onEdit: this.callbacks.onEdit,
      pendingContent: content,
    });
    this.viewOf.set(view.item, view);
    this.list.append(view.item);
    return view;
  }

  // The stored version of a pending message arrived.
  adopt(view, message) {
    const other = this.byId.get(message.id);
    if (other && other !== view) {
      // Shown already (messageAdded was quicker): the pending copy goes.
      this.remove(view);
      this.refresh(other, message);
      return other;
    }
    view.update(message);
    this.index(view);
    return view;
  }

  // The slot where the reply to this user message goes: the one shown, or a new empty one
  // right after the user message (a reply is about to stream into it).
  slotFor(questionId) {
    let view = this.slots.get(questionId);
    if (!view) {
      view = this.newReplyView(questionId);
      const question = this.byId.get(questionId);
      if (question) question.item.after(view.item);
      else this.list.append(view.item);
    }
    return view;
  }

  // A piece of a reply being written into `view`.
  addPiece(view, piece) {
    if (view.addPiece(piece)) this.byId.set(piece.messageId, view);
  }

  remove(view) {
    view.item.remove();
    for (const [id, shown] of this.byId) {
      if (shown === view) this.byId.delete(id);
    }
    for (const [questionId, slot] of this.slots) {
      if (slot === view) this.slots.delete(questionId);
    }
    this.replies.delete(view);
  }

  // The view showing the message with this id (a reply slot switches to that variant).
  find(id) {
    const view = this.byId.get(id);
    if (view instanceof ReplyView && view.shown && view.shown.id !== id) view.showVariantById(id);
    return view || null;
  }

  // Only the last item, when it is a reply, offers "Regenerate" (the server regenerates
  // the session's latest turn only); `busy` while a turn is running.
  markLatest(busy) {
    const last = this.list.lastElementChild && this.viewOf.get(this.list.lastElementChild);
    for (const view of this.replies) view.setLatest(view === last, busy);
  }

  // --- internals

  refresh(view, message) {
    if (view instanceof UserMessageView) {
      view.update(message);
    } else if (isCurrentOrStreaming(view, message.id)) {
      view.showStored(message);
    }
    // An earlier variant coming again changes nothing: the slot shows the current reply.
    this.index(view);
  }

  acceptReply(message) {
    const questionId = message.replyTo && message.replyTo.id;
    // A regenerated reply lands in the slot of the reply it replaces (same user message).
    const view = (questionId && this.slots.get(questionId)) || this.newReplyView(questionId);
    if (!view.item.isConnected) {
      const question = questionId && this.byId.get(questionId);
      if (question) question.item.after(view.item);
      else this.list.append(view.item);
    }
    view.showStored(message);
    this.index(view);
    return view;
  }

  newUserView(message) {
    const view = new UserMessageView(message, { onEdit: this.callbacks.onEdit });
    this.viewOf.set(view.item, view);
    this.index(view);
    return view;
  }

  newReplyView(questionId) {
    const view = new ReplyView({
      onRate: this.callbacks.onRate,
      onRegenerate: this.callbacks.onRegenerate,
      onVariant: this.callbacks.onVariant,
    });
    this.viewOf.set(view.item, view);
    this.replies.add(view);
    if (questionId) this.slots.set(questionId, view);
    return view;
  }

  index(view) {
    for (const id of view.ids()) this.byId.set(id, view);
  }
}

function isCurrentOrStreaming(view, id) {
  if (view.streaming && view.streaming.messageId === id) return true;
  const current = view.variants[view.variants.length - 1];
  return Boolean(current && current.id === id);
}
