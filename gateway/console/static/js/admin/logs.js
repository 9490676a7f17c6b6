// The "Logs" tab: the system operation log, newest first, filtered by level and time, 50
// entries a page ("Load more" follows the cursor).
import { gql } from "../api.js";
import { button, clearError, el, errorRegion, formatTime, showError } from "../ui.js";
import { busy, field, jsonDetails, loadMore, localToUtc, table, tableRow } from "./common.js";

const PAGE_SIZE = 50;
const LOGS = `query AdminLogs($level: LogLevel, $startTime: DateTime, $endTime: DateTime, $after: String) {
  logs(level: $level, startTime: $startTime, endTime: $endTime, first: ${PAGE_SIZE}, after: $after) {
    totalCount
    edges { node { id level event message createdAt actorId details } }
    pageInfo { hasNextPage endCursor }
  }
}`;
// Entries name their actor by id: the users' names make the table readable.
const USER_NAMES = `query AdminUserNames { users(first: 100) { edges { node { id name } } } }`;

export function initLogs(panel) {
  const errors = errorRegion();
  const level = el(
    "select",
    {},
    el("option", { value: "" }, "All"),
    ["INFO", "WARNING", "ERROR"].map((name) => el("option", { value: name }, name)),
  );
  const from = el("input", { type: "datetime-local" });
  const to = el("input", { type: "datetime-local" });
  const show = el("button", { type: "submit" }, "Show logs");
  const form = el(
    "form",
    {
      class: "filters",
      "aria-label": "Log filters",
      onsubmit: (event) => {
        event.preventDefault();
        load();
      },
    },
    field("Level", level).node,
    field("From", from, { hint: "Your local time." }).node,
    field("To", to, { hint: "Your local time." }).node,
    el("div", { class: "filters-submit" }, show),
  );
  // The count is also the status line: a screen reader hears it change.
  const count = el("p", { class: "count", role: "status", tabindex: "-1" });
  const more = el("div", { class: "row" });
  // The count says when nothing matches: the table has no empty text of its own.
  const { node: list, body } = table(
    "Log entries, newest first",
    ["Time", "Level", "Event", "Message", "Actor", "Details"],
    [],
    { className: "logs", emptyText: null },
  );
  panel.append(
    el("div", { class: "tab-head" }, el("h2", {}, "Logs")),
    form,
    errors,
    count,
    list,
    more,
  );

  let names = null;
  let filters = null;
  // A new search makes the answers of an older one (still loading) moot.
  let serial = 0;

  async function userNames() {
    if (names === null) {
      const users = (await gql(USER_NAMES)).users.edges;
      names = new Map(users.map(({ node }) => [node.id, node.name]));
    }
    return names;
  }

  async function load() {
    clearError(errors);
    filters = {
      level: level.value || null,
      startTime: localToUtc(from.value),
      endTime: localToUtc(to.value),
    };
    const mine = ++serial;
    await busy(show, list, async () => {
      try {
        const [connection, known] = await Promise.all([
          gql(LOGS, { ...filters, after: null }),
          userNames(),
        ]);
        if (mine !== serial) return;
        body.replaceChildren();
        addPage(connection.logs, known);
      } catch (error) {
        showError(errors, error, { retry: load });
      }
    });
  }

  // "Load more" stays one button (it keeps the focus while pages arrive); hidden on the
  // last page.
  let nextCursor = null;
  const moreButton = button("Load more", () => nextPage(), { class: "secondary", hidden: true });
  more.append(moreButton);

  function nextPage() {
    const mine = serial;
    const pager = { button: moreButton, region: list, errors, retry: nextPage, landing: count };
    return loadMore(pager, async () => {
      const connection = (await gql(LOGS, { ...filters, after: nextCursor })).logs;
      if (mine !== serial) return;
      addPage(connection, names);
    });
  }

  function addPage(connection, known) {
    for (const { node } of connection.edges) {
      const actor = node.actorId ? known.get(node.actorId) || node.actorId : "—";
      body.append(
        tableRow(
          [
            el("time", { datetime: node.createdAt }, formatTime(node.createdAt)),
            el("span", { class: `level level-${node.level.toLowerCase()}` }, node.level),
            node.event,
            node.message,
            actor,
            jsonDetails(node.details),
          ],
          { dataset: { level: node.level, createdAt: node.createdAt } },
        ),
      );
    }
    count.textContent =
      connection.totalCount === 0
        ? "No entries match."
        : `Showing ${body.rows.length} of ${connection.totalCount} entries.`;
    nextCursor = connection.pageInfo.endCursor;
    moreButton.hidden = !connection.pageInfo.hasNextPage;
  }

  load();
  return {};
}
