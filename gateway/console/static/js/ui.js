// Small DOM helpers shared by both pages. Everything the console shows is built as DOM
// nodes with text content: nothing a user or a model wrote is ever parsed as HTML here
// (markdown.js is the one place that renders HTML, escaped by markdown-it).

// el("button", { type: "button", onclick: fn, class: "x", "aria-label": "Send" }, "Send")
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replace a node's children.
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// A sentence for an ApiError (or any error), as a user should read it.
function describeError(error) {
  const code = error && error.code;
  if (code === "RATE_LIMITED") {
    const wait = error.retryAfter ? ` Try again in ${Math.ceil(error.retryAfter)} s.` : "";
    return `Rate limited: too many requests.${wait}`;
  }
  if (code === "INTERNAL_SERVER_ERROR") {
    // A model that failed or timed out, or a fault of the server: its message says which.
    return `The request failed: ${error.message}`;
  }
  if (code === "UNAUTHENTICATED") return "Your key or token was not accepted: sign in again.";
  if (code === "FORBIDDEN") return `Not allowed: ${error.message}`;
  if (code === "NETWORK") return error.message;
  return (error && error.message) || "Something went wrong";
}

// Show an error in `container` (a role="alert" region): its sentence, its code, and a
// "Retry" button when `retry` is given. Returns the shown node.
export function showError(container, error, { retry = null, onDismiss = null } = {}) {
  const banner = el(
    "div",
    { class: "error", role: "alert", dataset: { code: (error && error.code) || "ERROR" } },
    el("span", { class: "error-text" }, describeError(error)),
    retry &&
      el(
        "button",
        {
          type: "button",
          onclick: () => {
            banner.remove();
            retry();
          },
        },
        "Retry",
      ),
    el(
      "button",
      {
        type: "button",
        class: "quiet",
        "aria-label": "Dismiss error",
        onclick: () => {
          banner.remove();
          if (onDismiss) onDismiss();
        },
      },
      "×",
    ),
  );
  container.replaceChildren(banner);
  return banner;
}

export function clearError(container) {
  container.replaceChildren();
}

// A short status line for screen readers and eyes (a role="status" region).
export function announce(region, text) {
  region.textContent = text;
}

// "2026-11-30T08:52:00+00:00" -> the reader's local date and time.
export function formatTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString();
}

let lastId = 0;

// A page-unique id for label[for] and aria-describedby (ids from the server are not ours
// to trust as HTML ids).
export function uniqueId(prefix) {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

// A type="button" button (never a form's submit); `attributes` add to or override these.
export function button(text, onclick, attributes = {}) {
  return el("button", { type: "button", onclick, ...attributes }, text);
}

// A polite status line: what just happened, read by screen readers without moving focus.
// `visible: false` keeps it for screen readers only.
export function statusRegion({ visible = true, className = "status" } = {}) {
  return el("p", { class: visible ? className : "visually-hidden", role: "status" });
}

// Where ui.showError puts its role="alert" banner.
export function errorRegion(className = "errors") {
  return el("div", { class: className });
}
