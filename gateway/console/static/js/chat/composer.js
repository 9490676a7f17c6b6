// The composer under the conversation: the "Message" field (Enter sends, Shift+Enter makes
// a new line), "Send", and "Stop" while a reply is being written.
import { button, el } from "../ui.js";

export class Composer {
  // onSend(text): a send was asked for; onStop(): stop the reply being written.
  constructor({ onSend, onStop }) {
    this.onSend = onSend;
    this.onStop = onStop;
    this.field = el("textarea", {
      id: "composer-message",
      rows: "3",
      placeholder: "Write a message. Enter sends, Shift+Enter starts a new line.",
      onkeydown: (event) => this.onKey(event),
    });
    this.sendButton = el("button", { type: "submit" }, "Send");
    this.stopButton = button("Stop", () => this.stop(), { class: "danger", disabled: true });
    this.element = el(
      "form",
      {
        class: "composer",
        onsubmit: (event) => {
          event.preventDefault();
          this.send();
        },
      },
      el("label", { for: "composer-message", class: "visually-hidden" }, "Message"),
      this.field,
      el("div", { class: "composer-buttons" }, this.sendButton, this.stopButton),
    );
    this.streaming = false;
  }

  get value() {
    return this.field.value;
  }

  set value(text) {
    this.field.value = text;
  }

  focus() {
    this.field.focus({ preventScroll: true });
  }

  // No session open: nothing to send to.
  setOpen(open) {
    this.element.hidden = !open;
  }

  // While a reply is being written: "Send" waits, "Stop" can stop it. A button about to be
  // disabled with the focus on it ("Send" pressed with Enter or Space, "Stop" when the reply
  // ends) hands the focus to the field rather than drop it to the page.
  setStreaming(streaming) {
    this.streaming = streaming;
    const disabling = streaming ? this.sendButton : this.stopButton;
    if (document.activeElement === disabling && !this.element.hidden) this.focus();
    this.sendButton.disabled = streaming;
    this.stopButton.disabled = !streaming;
  }

  // Once the server has stored the sent message the field is emptied, unless the writer
  // has started on something else meanwhile.
  clearIf(sentText) {
    if (this.field.value === sentText) this.field.value = "";
  }

  onKey(event) {
    if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey)
      return;
    if (event.isComposing) return; // an input method is still composing a character
    event.preventDefault();
    this.send();
  }

  send() {
    if (this.streaming) return;
    const text = this.field.value;
    if (!text.trim()) {
      this.focus();
      return;
    }
    this.onSend(text);
  }

  stop() {
    // Disabled until the server answers (stopReplied); the focus goes back to the field
    // rather than to the page with the disabled button.
    this.stopButton.disabled = true;
    this.focus();
    this.onStop();
  }

  // The stop request failed or found nothing to stop: it may be asked again.
  stopReplied() {
    this.stopButton.disabled = !this.streaming;
  }
}
