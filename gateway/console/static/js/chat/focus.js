// The focus after an action that removed, hid or disabled the control that had it (an error
// banner's "Retry", a button that waits while a reply is written): a keyboard or screen
// reader user must not be dropped to the start of the page. Whoever did such a thing asks
// focusIsLost() and, if so, puts the focus where the work goes on.
import { showError } from "../ui.js";

// True when nothing usable has the focus: the page itself, a control taken out of the page,
// hidden, or disabled.
export function focusIsLost() {
  const active = document.activeElement;
  if (!active || active === document.body || active === document.documentElement) return true;
  if (!active.isConnected || active.disabled) return true;
  return active.getClientRects().length === 0; // hidden (display: none, or inside [hidden])
}

// ui.showError in `container`, whose "Retry" and "×" (each removes the banner, and the
// focus with it) leave the focus at `home()` unless the retry put it somewhere else.
export function showErrorKeepingFocus(container, error, { retry = null, home }) {
  const refocus = () => {
    if (focusIsLost()) home();
  };
  return showError(container, error, {
    retry:
      retry &&
      (() => {
        retry();
        refocus();
      }),
    onDismiss: refocus,
  });
}
