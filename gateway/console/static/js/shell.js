// The top bar both pages share: who is signed in, where to go, and signing out.
import { consoleSettings } from "./api.js";
import { signOut } from "./signin.js";
import { el, replaceChildren } from "./ui.js";

export async function showShell(nav, me, current) {
  const settings = await consoleSettings();
  const link = (href, text, name) =>
    el("a", { href, "aria-current": current === name ? "page" : null }, text);
  replaceChildren(
    nav,
    link("/", "Chat", "chat"),
    me.role === "ADMIN" && link("/admin", "Admin", "admin"),
    settings.graphiql && el("a", { href: "/graphql" }, "GraphiQL"),
    el("span", { class: "who" }, `${me.name} (${me.role.toLowerCase()})`),
    el("button", { type: "button", class: "quiet", onclick: signOut }, "Sign out"),
  );
}
