// The admin page (admins only): model configs, usage, logs, users and keys, one tab each.
// The open tab is in the address (#configs, #usage, #logs, #users), so a reload keeps it.
// A tab loads its data the first time it opens; a non-admin never gets that far.
import { showShell } from "../shell.js";
import { signIn } from "../signin.js";
import { button, el, showError } from "../ui.js";
import { initConfigs } from "./configs.js";
import { initLogs } from "./logs.js";
import { initUsage } from "./usage.js";
import { initUsers } from "./users.js";

const TABS = [
  { name: "configs", label: "Model configs", init: initConfigs },
  { name: "usage", label: "Usage", init: initUsage },
  { name: "logs", label: "Logs", init: initLogs },
  { name: "users", label: "Users", init: initUsers },
];

// The tab the address names: the first for no hash; null for another hash (the "Skip to
// the content" link's #admin).
function tabInAddress() {
  const name = window.location.hash.replace(/^#/, "");
  if (!name) return TABS[0].name;
  return TABS.some((tab) => tab.name === name) ? name : null;
}

// An ARIA tablist: one tab stop for the list (the selected tab), arrow keys, Home and End
// move between tabs and open them (automatic activation: each opens quickly).
function buildTabs(root, me) {
  const tablist = el("div", { role: "tablist", "aria-label": "Admin sections", class: "tabs" });
  const panels = el("div", { class: "panels" });
  const entries = TABS.map((tab) => {
    const tabButton = button(tab.label, () => open(tab.name, { focus: false }), {
      role: "tab",
      id: `admin-tab-${tab.name}`,
      "aria-controls": `admin-panel-${tab.name}`,
      "aria-selected": "false",
      tabindex: "-1",
    });
    const panel = el("section", {
      role: "tabpanel",
      id: `admin-panel-${tab.name}`,
      "aria-labelledby": tabButton.id,
      tabindex: "0",
      class: "tab-panel",
      hidden: true,
    });
    tablist.append(tabButton);
    panels.append(panel);
    return { ...tab, button: tabButton, panel, controller: null };
  });

  tablist.addEventListener("keydown", (event) => {
    const index = entries.findIndex((entry) => entry.button === document.activeElement);
    if (index < 0) return;
    const moves = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      Home: 0,
      End: entries.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = (moves[event.key] + entries.length) % entries.length;
    open(entries[next].name, { focus: true });
  });

  // Show a tab (and load it the first time). The address follows; hashchange (a reload, the
  // Back button, an edited address) calls show() directly.
  let current = null;
  function show(name, { focus = false } = {}) {
    const chosen = entries.find((entry) => entry.name === name);
    if (focus) chosen.button.focus();
    if (current === name) return;
    current = name;
    for (const entry of entries) {
      const selected = entry === chosen;
      entry.button.setAttribute("aria-selected", String(selected));
      entry.button.tabIndex = selected ? 0 : -1;
      entry.panel.hidden = !selected;
    }
    // Each tab keeps what it showed when left; its own buttons refresh it.
    if (chosen.controller === null) chosen.controller = chosen.init(chosen.panel, { me });
  }

  function open(name, { focus }) {
    if (window.location.hash !== `#${name}`) {
      // Setting the hash adds a history entry (Back returns to the previous tab); no element
      // has these ids, so the page does not jump.
      window.location.hash = name;
    }
    show(name, { focus });
  }

  // A tab's hash (Back, Forward, an edited address) opens it; any other hash (the skip
  // link's) leaves the open tab as it is.
  window.addEventListener("hashchange", () => {
    const name = tabInAddress();
    if (name) show(name);
  });
  root.replaceChildren(tablist, panels);
  show(tabInAddress() || TABS[0].name);
}

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
  buildTabs(root, me);
}

start().catch((error) => showError(document.getElementById("page-errors"), error));
