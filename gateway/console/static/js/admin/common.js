// Building blocks the admin tabs share: tables, labelled fields, a box for a secret shown
// once, paging, and the date conversions of the filters. All DOM through ui.el; ids, buttons,
// status lines and error regions are ui.js's.
import { button, clearError, el, showError, statusRegion, uniqueId } from "../ui.js";

// A table in a horizontally scrolling wrapper (wide tables on a phone scroll, the page
// does not), its caption for screen readers only. `columns`: header texts; `rows`: <tr>
// nodes (tableRow) or arrays of cells (a Node, a string, or a {header: true, content} cell
// for the row's header). Returns { node: the wrapper, body: the <tbody> } so a pager can
// append rows. `emptyText` shows under a table made with no rows (null: nothing, for a
// pager that says so in its count).
export function table(
  caption,
  columns,
  rows = [],
  { emptyText = "Nothing to show.", className = null } = {},
) {
  const body = el("tbody");
  for (const row of rows) body.append(row instanceof Node ? row : tableRow(row));
  const node = el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: className },
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
    ),
    rows.length === 0 && emptyText && el("p", { class: "hint empty" }, emptyText),
  );
  return { node, body };
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
  if (!control.id) control.id = uniqueId("admin-field");
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
  const input = el("input", { type: "checkbox", id: uniqueId("admin-check"), name });
  input.checked = checked;
  return {
    input,
    node: el("div", { class: "check" }, input, el("label", { for: input.id }, labelText)),
  };
}

// A just-issued API key, shown once: a read-only field (easy to select), a "Copy" button
// and the reminder that it will not be shown again.
export function secretBox(title, secret, { onDone = null } = {}) {
  const keyField = el("input", {
    type: "text",
    id: uniqueId("admin-secret"),
    readonly: true,
    spellcheck: "false",
    autocomplete: "off",
  });
  keyField.value = secret;
  const copied = statusRegion();
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
    button(
      "Done",
      () => {
        box.remove();
        if (onDone) onDone();
      },
      { class: "secondary" },
    ),
  );
  return box;
}

function copyButton(keyField, status) {
  return button(
    "Copy",
    async () => {
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
    { class: "secondary" },
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
export async function busy(control, region, work) {
  const hadFocus = Boolean(control) && document.activeElement === control;
  if (control) control.disabled = true;
  if (region) region.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    if (control) control.disabled = false;
    if (region) region.removeAttribute("aria-busy");
    const focusLost = !document.activeElement || document.activeElement === document.body;
    if (hadFocus && focusLost && control.isConnected && !control.hidden) control.focus();
  }
}

// A pager's "Load more" (one button for every page: it keeps the focus while pages
// arrive; `work` hides it on the last page). Clears `errors`, runs `work` (fetch a page
// and show it) with the button busy and `region` marked busy, and shows a failure in
// `errors` with a "Retry" that calls `retry`. When the last page hid the focused button,
// the focus goes to `landing` (the count of what shows), near it rather than to the page's
// start. `button` may be null (a pager's first page: nothing to disable or follow).
export async function loadMore({ button: more, region, errors, retry, landing }, work) {
  clearError(errors);
  const hadFocus = Boolean(more) && document.activeElement === more;
  await busy(more, region, async () => {
    try {
      await work();
    } catch (error) {
      showError(errors, error, { retry });
    }
  });
  if (hadFocus && more.hidden) landing.focus();
}
