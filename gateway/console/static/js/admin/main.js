// The admin page (admins only): model configs, usage, logs, users and keys, one tab each.
import { showShell } from "../shell.js";
import { signIn } from "../signin.js";
import { el, showError } from "../ui.js";

async function start() {
  const me = await signIn(document.getElementById("signin"));
  await showShell(document.getElementById("nav"), me, "admin");
  const root = document.getElementById("admin");
  root.hidden = false;
  if (me.role !== "ADMIN") {
    root.replaceChildren(
      el("h2", {}, "Admin"),
      el("p", { role: "alert", class: "error" }, "Admins only: sign in with an admin's key."),
    );
    return;
  }
  // The tabs are built by the admin modules (configs.js, usage.js, logs.js, users.js).
}

start().catch((error) => showError(document.getElementById("page-errors"), error));
