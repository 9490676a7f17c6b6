// One message of the conversation as the page shows it: an <li> holding an <article>.
//
// - UserMessageView: the text exactly as typed (textContent: nothing in it is parsed), and
//   "Edit", which opens a form to send a changed version in a fork of the session.
// - ReplyView: one reply "slot" of the history: the current reply to a user message and
//   its earlier variants (regenerations), the one shown rendered as Markdown, its details,
//   rating buttons, and "Regenerate" while it is the latest. A reply being written streams
//   into the same slot.
//
// Views only draw and report the user's wishes through callbacks; the conversation
// (open_session.js) talks to the server and tells the views what happened.
import { renderMarkdown } from "../markdown.js";
import { button, el, formatTime, uniqueId } from "../ui.js";
import { focusIsLost } from "./focus.js";

const QUIET = { class: "quiet" };

function metaLine(author, createdAt) {
  const time = el("time", { class: "message-time" });
  setTime(time, createdAt);
  return {
    line: el("p", { class: "message-meta" }, el("span", { class: "message-author" }, author), time),
    time,
  };
}

function setTime(node, iso) {
  node.textContent = formatTime(iso);
  if (iso) node.setAttribute("datetime", iso);
  else node.removeAttribute("datetime");
}

export class UserMessageView {
  // `message` is a stored Message, or null while a send is on its way (`pendingContent`).
  constructor(message, { onEdit, pendingContent = "" }) {
    this.message = null;
    this.onEdit = onEdit;
    this.text = el("div", { class: "message-text" });
    const meta = metaLine("You", null);
    this.time = meta.time;
    this.editButton = button("Edit", () => this.openEditor(), QUIET);
    this.actions = el("div", { class: "message-actions" }, this.editButton);
    this.article = el(
      "article",
      { class: "message-body", dataset: { type: "USER" }, "aria-label": "Your message" },
      meta.line,
      this.text,
      this.actions,
    );
    this.item = el("li", { class: "message user-message" }, this.article);
    if (message) this.update(message);
    else this.showPending(pendingContent);
  }

  get id() {
    return this.message ? this.message.id : null;
  }

  ids() {
    return this.message ? [this.message.id] : [];
  }

  // Shown at once when sent, before the server has stored it.
  showPending(content) {
    this.text.textContent = content;
    this.article.dataset.pending = "true";
    this.editButton.hidden = true;
  }

  update(message) {
    this.message = message;
    this.article.dataset.messageId = message.id;
    delete this.article.dataset.pending;
    this.text.textContent = message.content;
    setTime(this.time, message.createdAt);
    this.editButton.hidden = false;
  }

  // The edit form replaces the text until it is sent or cancelled.
  openEditor() {
    if (this.editor) {
      this.editor.field.focus();
      return;
    }
    const fieldId = uniqueId("edited-message");
    const field = el("textarea", { id: fieldId, rows: "3", "aria-describedby": `${fieldId}-hint` });
    field.value = this.message.content;
    const save = el("button", { type: "submit" }, "Save and send");
    const cancel = button("Cancel", () => this.closeEditor(), { class: "secondary" });
    const form = el(
      "form",
      {
        class: "edit-form stack",
        onsubmit: (event) => {
          event.preventDefault();
          this.submitEdit();
        },
      },
      el("label", { for: fieldId, class: "visually-hidden" }, "Edited message"),
      field,
      el(
        "p",
        { id: `${fieldId}-hint`, class: "hint" },
        "Sends the new version in a copy of this conversation; this one stays as it is.",
      ),
      el("div", { class: "row" }, save, cancel),
    );
    this.editor = { form, field, save, cancel };
    this.text.hidden = true;
    this.actions.hidden = true;
    this.article.append(form);
    field.focus();
    field.setSelectionRange(field.value.length, field.value.length);
  }

  async submitEdit() {
    const { field, save, cancel } = this.editor;
    const content = field.value;
    if (!content.trim()) {
      field.focus();
      return;
    }
    // The buttons wait while the fork is made: the focus (on "Save and send" after Enter
    // on it) waits in the field meanwhile, not on a disabled button.
    if (this.editor.form.contains(document.activeElement)) field.focus();
    save.disabled = cancel.disabled = true;
    try {
      // Resolves once the fork is open (this view is gone then, the "Message" field has the
      // focus), or after an error the conversation has shown: the form stays for another try.
      await this.onEdit(this, content);
    } finally {
      save.disabled = cancel.disabled = false;
      if (field.isConnected && focusIsLost()) field.focus();
    }
  }

  closeEditor() {
    if (!this.editor) return;
    this.editor.form.remove();
    this.editor = null;
    this.text.hidden = false;
    this.actions.hidden = false;
    this.editButton.focus();
  }
}

// "12 ms", "—" for a value the reply's metadata does not have.
function orDash(value, unit = "") {
  return value === null || value === undefined || value === "" ? "—" : `${value}${unit}`;
}

function modelText(metadata) {
  const name = [metadata.model_name, metadata.model_version && `v${metadata.model_version}`]
    .filter(Boolean)
    .join(" ");
  return metadata.provider ? `${orDash(name)} (${metadata.provider})` : orDash(name);
}

function tokensText(metadata) {
  const usage = metadata.usage;
  if (!usage) return "—";
  return `${orDash(usage.prompt_tokens)} in, ${orDash(usage.completion_tokens)} out`;
}

function latencyText(metadata) {
  const total = orDash(metadata.latency_ms, " ms");
  const first = metadata.time_to_first_token_ms;
  return first === null || first === undefined ? total : `${total} (first words after ${first} ms)`;
}

function detailRows(metadata) {
  const data = metadata || {};
  return [
    ["Model", modelText(data)],
    ["Config version", orDash(data.config_version)],
    ["Finish reason", orDash(data.finish_reason)],
    ["Tokens", tokensText(data)],
    ["Latency", latencyText(data)],
  ];
}

// A reply's text as it streams: kept as code points, because a piece's `offset` counts
// code points (not JavaScript's UTF-16 units).
class StreamedText {
  constructor(messageId) {
    this.messageId = messageId;
    this.chars = [];
  }

  add({ delta, offset }) {
    // A piece sent again (a resumed stream) overwrites from its offset; a gap cannot be
    // filled here, so the piece is appended and the stored reply corrects it at the end.
    if (offset < this.chars.length) this.chars.length = offset;
    for (const char of delta) this.chars.push(char);
  }

  toString() {
    return this.chars.join("");
  }
}

export class ReplyView {
  // callbacks: onRate(view, variantId, rating|null), onRegenerate(view),
  // onVariant(position, count): the reader switched to another variant (to announce).
  constructor({ onRate, onRegenerate, onVariant }) {
    this.onRate = onRate;
    this.onRegenerate = onRegenerate;
    this.onVariant = onVariant;
    this.variants = []; // stored replies to the same user message, oldest first
    this.index = -1; // the one shown
    this.streaming = null; // StreamedText while a reply is being written here
    this.renderQueued = false;
    this.build();
    this.render();
  }

  build() {
    const meta = metaLine("Assistant", null);
    this.time = meta.time;
    this.status = el("p", { class: "reply-status" });
    this.text = el("div", { class: "message-text markdown" });

    const named = (name) => ({ "aria-label": name, title: name });
    this.previous = button("‹", () => this.step(-1), { ...QUIET, ...named("Previous variant") });
    this.next = button("›", () => this.step(1), { ...QUIET, ...named("Next variant") });
    // Not a live region (every reply has one): a switch is announced by the conversation's
    // status line (onVariant).
    this.position = el("span", { class: "variant-position" });
    this.variantNav = el(
      "div",
      { class: "variant-nav", role: "group", "aria-label": "Variants" },
      this.previous,
      this.position,
      this.next,
    );
    const rating = { class: "quiet rate", "aria-pressed": "false" };
    this.good = button("Good reply", () => this.rate("UP"), rating);
    this.bad = button("Bad reply", () => this.rate("DOWN"), rating);
    this.regenerate = button("Regenerate", () => this.askAgain(), {
      class: "secondary",
      hidden: true,
    });
    this.actions = el(
      "div",
      { class: "message-actions" },
      this.variantNav,
      this.good,
      this.bad,
      this.regenerate,
    );

    this.detailList = el("dl", { class: "reply-details" });
    this.details = el("details", {}, el("summary", {}, "Details"), this.detailList);

    this.article = el(
      "article",
      { class: "message-body", dataset: { type: "AI" }, "aria-label": "Reply" },
      meta.line,
      this.status,
      this.text,
      this.actions,
      this.details,
    );
    this.item = el("li", { class: "message reply" }, this.article);
  }

  get shown() {
    return this.variants[this.index] || null;
  }

  // Every id this slot stands for (its variants and a reply being written).
  ids() {
    const ids = this.variants.map((variant) => variant.id);
    if (this.streaming) ids.push(this.streaming.messageId);
    return ids;
  }

  hasStored() {
    return this.variants.length > 0;
  }

  // A stored reply (from a page, a stream or messageAdded): it becomes the slot's current
  // reply and is shown, with its variants as the server listed them.
  showStored(message) {
    const variants = (
      message.variants && message.variants.length ? message.variants : [message]
    ).map((variant) => (variant.id === message.id ? message : variant));
    if (!variants.some((variant) => variant.id === message.id)) variants.push(message);
    this.variants = variants;
    this.index = variants.findIndex((variant) => variant.id === message.id);
    this.streaming = null;
    this.render();
  }

  // A piece of a reply being written. Returns false for a piece of a reply already stored
  // here (a late piece of a finished stream).
  addPiece(piece) {
    if (this.variants.some((variant) => variant.id === piece.messageId)) return false;
    if (!this.streaming || this.streaming.messageId !== piece.messageId) {
      this.streaming = new StreamedText(piece.messageId);
      this.render();
    }
    this.streaming.add(piece);
    this.queueStreamRender();
    return true;
  }

  // The stream ended without a stored reply (an error): back to what was shown before.
  // False when there is nothing to show (the slot should go).
  abandonStream() {
    this.streaming = null;
    if (!this.hasStored()) return false;
    this.render();
    return true;
  }

  // Show the variant with this id; false if it is not one of this slot's.
  showVariantById(id) {
    const index = this.variants.findIndex((variant) => variant.id === id);
    if (index < 0 || this.streaming) return false;
    this.index = index;
    this.render();
    return true;
  }

  step(by) {
    const index = this.index + by;
    if (index < 0 || index >= this.variants.length) return;
    const moved = by < 0 ? this.previous : this.next;
    this.index = index;
    this.render();
    // A button that just became disabled would drop the focus to the page: hand it over.
    if (moved.disabled && (document.activeElement === moved || focusIsLost())) {
      (by < 0 ? this.next : this.previous).focus();
    }
    if (this.onVariant) this.onVariant(this.index + 1, this.variants.length);
  }

  // "Regenerate": the button goes while the new reply is written into this slot, so the
  // focus moves to the slot itself (the reply being written, then the new reply).
  askAgain() {
    this.article.tabIndex = -1;
    this.article.focus({ preventScroll: true });
    this.onRegenerate(this);
  }

  // A rating the server confirmed for one of this slot's variants.
  setRating(variantId, rating) {
    const variant = this.variants.find((candidate) => candidate.id === variantId);
    if (!variant) return;
    variant.feedback = rating ? { rating } : null;
    this.renderActions();
  }

  rate(rating) {
    const variant = this.shown;
    if (!variant) return;
    const current = variant.feedback && variant.feedback.rating;
    // Pressing the pressed button again clears the rating.
    this.onRate(this, variant.id, current === rating ? null : rating);
  }

  // Only the session's latest reply may be regenerated; `busy` while a turn runs.
  setLatest(latest, busy) {
    this.regenerate.hidden = !latest || !this.hasStored();
    this.regenerate.disabled = busy;
  }

  queueStreamRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    // Re-rendering the Markdown once a frame keeps a fast stream cheap.
    requestAnimationFrame(() => {
      this.renderQueued = false;
      if (this.streaming) renderMarkdown(this.text, this.streaming.toString());
    });
  }

  render() {
    const variant = this.shown;
    if (this.streaming || !variant) {
      this.renderWriting();
      return;
    }
    const metadata = variant.metadata || {};
    const dataset = this.article.dataset;
    dataset.messageId = variant.id;
    dataset.finishReason = metadata.finish_reason || "";
    if (metadata.config_version !== undefined && metadata.config_version !== null) {
      dataset.configVersion = String(metadata.config_version);
    } else {
      delete dataset.configVersion;
    }
    this.article.removeAttribute("aria-busy");
    setTime(this.time, variant.createdAt);
    const stopped = metadata.finish_reason === "cancelled";
    this.status.textContent = stopped ? "Stopped" : "";
    this.status.hidden = !stopped;
    renderMarkdown(this.text, variant.content);
    this.details.hidden = false;
    this.detailList.replaceChildren(
      ...detailRows(metadata).flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
    );
    this.actions.hidden = false;
    this.renderActions();
  }

  // A reply being written (or awaited: an empty slot until its first piece arrives).
  renderWriting() {
    const dataset = this.article.dataset;
    if (this.streaming) dataset.messageId = this.streaming.messageId;
    delete dataset.finishReason;
    delete dataset.configVersion;
    this.article.setAttribute("aria-busy", "true");
    this.status.textContent = "Writing…";
    this.status.hidden = false;
    renderMarkdown(this.text, this.streaming ? this.streaming.toString() : "");
    this.actions.hidden = true;
    this.details.hidden = true;
  }

  renderActions() {
    const count = this.variants.length;
    this.variantNav.hidden = count < 2;
    this.position.textContent = `${this.index + 1}/${count}`;
    this.previous.disabled = this.index <= 0;
    this.next.disabled = this.index >= count - 1;
    const rating = this.shown && this.shown.feedback ? this.shown.feedback.rating : null;
    this.good.setAttribute("aria-pressed", String(rating === "UP"));
    this.bad.setAttribute("aria-pressed", String(rating === "DOWN"));
  }
}
