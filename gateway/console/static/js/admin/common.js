// Building blocks the admin tabs share: tables, labelled fields, status lines, a box for a
// secret shown once, and the date conversions of the filters. All DOM through ui.el.
import { el } from "../ui.js";

let uniqueCounter = 0;

// An id no other element of the page has (labels and aria-describedby need ids).
export function uniqueId(stem) {
  uniqueCounter += 1;
  return `admin-${stem}-${uniqueCounter}`;
}

// A table in a horizontally scrolling wrapper (wide tables on a phone scroll, the page
// does not). `columns`: header texts; `rows`: <tr> nodes (tableRow) or arrays of cells (a
// Node, a string, or a {header: true, content} cell for the row's header).
export function table(caption, columns, rows, { emptyText = "Nothing to show." } = {}) {
  const body = el("tbody");
  for (const row of rows) body.append(row instanceof Node ? row : tableRow(row));
  const node = el(
    "table",
    {},
    el("caption", { class: "visually-hidden" }, caption),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        columns.map((text) => el("th", { scope: "col" }, text)),
      ),
    ),
    body,
  );
  return el(
    "div",
    { class: "table-wrap" },
    node,
    rows.length === 0 && el("p", { class: "hint empty" }, emptyText),
  );
}

// One <tr>; see table() for the cells. Returned so a tab can append rows (paging).
export function tableRow(cells, attributes = {}) {
  return el(
    "tr",
    attributes,
    cells.map((cell) => {
      if (cell && typeof cell === "object" && !(cell instanceof Node) && cell.header) {
        return el("th", { scope: "row" }, cell.content);
      }
      return el("td", {}, cell);
    }),
  );
}

// A label above its control, an optional hint, and a place for the control's error. The
// hint and the error are tied to the control with aria-describedby so a screen reader
// reads them with it.
export function field(labelText, control, { hint = null } = {}) {
  if (!control.id) control.id = uniqueId("field");
  const hintNode = hint && el("p", { class: "hint", id: `${control.id}-hint` }, hint);
  const errorNode = el("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
  describe(control, hintNode, null);
  const wrapper = el(
    "div",
    { class: "field" },
    el("label", { for: control.id }, labelText),
    control,
    hintNode,
    errorNode,
  );
  return {
    node: wrapper,
    control,
    // Show (text) or clear (null) this control's error.
    setError(text) {
      errorNode.textContent = text || "";
      errorNode.hidden = !text;
      if (text) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
      describe(control, hintNode, text ? errorNode : null);
    },
  };
}

function describe(control, hintNode, errorNode) {
  const ids = [hintNode && hintNode.id, errorNode && errorNode.id].filter(Boolean);
  if (ids.length) control.setAttribute("aria-describedby", ids.join(" "));
  else control.removeAttribute("aria-describedby");
}

// A checkbox with its label beside it.
export function checkbox(labelText, { checked = false, name = null } = {}) {
  const input = el("input", { type: "checkbox", id: uniqueId("check"), name });
  input.checked = checked;
  return {
    input,
    node: el("div", { class: "check" }, input, el("label", { for: input.id }, labelText)),
  };
}

// A polite status line (what just happened), read by screen readers without moving focus.
export function statusLine() {
  return el("p", { class: "status", role: "status" });
}

// A region for a tab's errors: ui.showError puts a role="alert" banner in it.
export function errorRegion() {
  return el("div", { class: "errors" });
}

// A just-issued API key, shown once: a read-only field (easy to select), a "Copy" button
// and the reminder that it will not be shown again.
export function secretBox(title, secret, { onDone = null } = {}) {
  const keyField = el("input", {
    type: "text",
    id: uniqueId("secret"),
    readonly: true,
    spellcheck: "false",
    autocomplete: "off",
  });
  keyField.value = secret;
  const copied = statusLine();
  const box = el(
    "div",
    { class: "secret panel" },
    el("h3", {}, title),
    el("label", { for: keyField.id }, "New API key"),
    el("div", { class: "row" }, keyField, copyButton(keyField, copied)),
    el(
      "p",
      { class: "hint" },
      "Copy it now: it is shown only this once. The gateway keeps only its digest.",
    ),
    copied,
    el(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          box.remove();
          if (onDone) onDone();
        },
      },
      "Done",
    ),
  );
  return box;
}

function copyButton(keyField, status) {
  return el(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: async () => {
        keyField.focus();
        keyField.select();
        // The clipboard API needs a secure context and the page's permission; without
        // them the key stays selected for the reader to copy by hand.
        if (!navigator.clipboard || !window.isSecureContext) {
          status.textContent = "Selected: copy it with your keyboard or menu.";
          return;
        }
        try {
          await navigator.clipboard.writeText(keyField.value);
          status.textContent = "Copied.";
        } catch (error) {
          status.textContent = "Copying was refused: the key is selected, copy it by hand.";
        }
      },
    },
    "Copy",
  );
}

// JSON on one line, for details and snapshots.
export function compactJson(value) {
  return JSON.stringify(value);
}

// <details> holding compact JSON (a log entry's details, a version's snapshot).
export function jsonDetails(value, summary = "Details") {
  if (value === null || value === undefined) return "";
  return el(
    "details",
    { class: "json" },
    el("summary", {}, summary),
    el("code", {}, compactJson(value)),
  );
}

// A JSON value with its object keys sorted: two values mean the same when these match.
export function canonicalJson(value) {
  const sortKeys = (item) => {
    if (Array.isArray(item)) return item.map(sortKeys);
    if (item && typeof item === "object") {
      return Object.fromEntries(
        Object.keys(item)
          .sort()
          .map((key) => [key, sortKeys(item[key])]),
      );
    }
    return item;
  };
  return JSON.stringify(sortKeys(value));
}

// "2026-11-30" (a date input, read as a UTC day) -> "2026-11-30T00:00:00.000Z"; `plusDays`
// moves it (an exclusive end: the day after "To").
export function utcDayStart(dateValue, plusDays = 0) {
  if (!dateValue) return null;
  const [year, month, day] = dateValue.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day + plusDays)).toISOString();
}

// Today's UTC day as a date input's value, `plusDays` away.
export function utcDay(plusDays = 0) {
  const now = new Date();
  const day = new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + plusDays),
  );
  return day.toISOString().slice(0, 10);
}

// A datetime-local value (the reader's local time) -> ISO 8601 in UTC; null when empty.
export function localToUtc(value) {
  if (!value) return null;
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? null : moment.toISOString();
}

// Run `work` with `button` disabled and the region marked busy, so a double click sends
// nothing twice. A disabled button drops the focus: it gets it back afterwards, unless
// `work` moved it elsewhere or the button is gone or hidden.
export async function busy(button, region, work) {
  const hadFocus = Boolean(button) && document.activeElement === button;
  if (button) button.disabled = true;
  if (region) region.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    if (button) button.disabled = false;
    if (region) region.removeAttribute("aria-busy");
    const focusLost = !document.activeElement || document.activeElement === document.body;
    if (hadFocus && focusLost && button.isConnected && !button.hidden) button.focus();
  }
}
