// The "Usage" tab: replies, failures, tokens and latency added up by user, model config and
// (UTC) day, as a table (the data) and a bar chart (a picture of one measure per row).
import { gql } from "../api.js";
import {
  announce,
  clearError,
  el,
  errorRegion,
  replaceChildren,
  showError,
  statusRegion,
} from "../ui.js";
import { busy, checkbox, field, table, tableRow, utcDay, utcDayStart } from "./common.js";

const USAGE = `query AdminUsage($startTime: DateTime, $endTime: DateTime, $groupBy: [UsageGroup!]) {
  usage(startTime: $startTime, endTime: $endTime, groupBy: $groupBy) {
    day replies failedReplies promptTokens completionTokens averageLatencyMs
    user { id name }
    modelConfig { id modelName }
  }
}`;

const GROUPS = [
  { group: "DAY", label: "Day", column: "Day", value: (row) => row.day || "" },
  {
    group: "USER",
    label: "User",
    column: "User",
    value: (row) => (row.user ? row.user.name : "(gone)"),
  },
  {
    group: "MODEL_CONFIG",
    label: "Model config",
    column: "Model config",
    value: (row) => (row.modelConfig ? row.modelConfig.modelName : "(gone)"),
  },
];

const MEASURES = {
  replies: { label: "Replies", value: (row) => row.replies },
  tokens: { label: "Tokens", value: (row) => row.promptTokens + row.completionTokens },
};

const number = new Intl.NumberFormat();
// Echo answers in a fraction of a millisecond: keep one decimal rather than show 0.
const latency = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function initUsage(panel) {
  const errors = errorRegion();
  const status = statusRegion();
  const results = el("div", { class: "usage-results stack" });

  const from = el("input", { type: "date" });
  const to = el("input", { type: "date" });
  // The last seven UTC days, today included.
  from.value = utcDay(-6);
  to.value = utcDay(0);
  const groupChecks = GROUPS.map((entry) => ({
    ...entry,
    box: checkbox(entry.label, { checked: entry.group !== "MODEL_CONFIG" }),
  }));
  const measure = el(
    "select",
    {},
    Object.entries(MEASURES).map(([name, { label }]) => el("option", { value: name }, label)),
  );
  const show = el("button", { type: "submit" }, "Show usage");
  const form = el(
    "form",
    {
      class: "filters",
      "aria-label": "Usage filters",
      onsubmit: (event) => {
        event.preventDefault();
        load();
      },
    },
    field("From", from, { hint: "UTC day, included." }).node,
    field("To", to, { hint: "UTC day, included." }).node,
    el(
      "fieldset",
      { class: "checks" },
      el("legend", {}, "Group by"),
      groupChecks.map((entry) => entry.box.node),
    ),
    field("Chart", measure).node,
    el("div", { class: "filters-submit" }, show),
  );

  panel.append(
    el("div", { class: "tab-head" }, el("h2", {}, "Usage")),
    form,
    errors,
    status,
    results,
  );

  let lastRows = [];
  let lastGroups = [];
  measure.addEventListener("change", () => render(lastRows, lastGroups));

  async function load() {
    clearError(errors);
    const groups = groupChecks.filter((entry) => entry.box.input.checked);
    const variables = {
      startTime: utcDayStart(from.value),
      // endTime is exclusive: the day after "To" starts where the range ends.
      endTime: utcDayStart(to.value, 1),
      groupBy: groups.map((entry) => entry.group),
    };
    await busy(show, results, async () => {
      try {
        const rows = (await gql(USAGE, variables)).usage;
        render(rows, groups);
        announce(status, `${rows.length} row${rows.length === 1 ? "" : "s"} of usage.`);
      } catch (error) {
        showError(errors, error, { retry: load });
      }
    });
  }

  function render(rows, groups) {
    lastRows = rows;
    lastGroups = groups;
    const label = (row) =>
      groups.length ? groups.map((entry) => entry.value(row)).join(" · ") : "All replies";
    const columns = [
      ...groups.map((entry) => entry.column),
      "Replies",
      "Failed",
      "Prompt tokens",
      "Completion tokens",
      "Avg latency",
    ];
    const bodyRows = rows.map((row) =>
      tableRow([
        ...(groups.length
          ? groups.map((entry, index) =>
              index === 0 ? { header: true, content: entry.value(row) } : entry.value(row),
            )
          : [{ header: true, content: "All" }]),
        number.format(row.replies),
        number.format(row.failedReplies),
        number.format(row.promptTokens),
        number.format(row.completionTokens),
        row.averageLatencyMs === null ? "—" : `${latency.format(row.averageLatencyMs)} ms`,
      ]),
    );
    if (!groups.length) columns.unshift("Group");
    replaceChildren(
      results,
      table("Usage", columns, bodyRows, { emptyText: "No replies in this range." }).node,
      rows.length > 0 && barChart(rows, label, MEASURES[measure.value]),
    );
  }

  load();
  return {};
}

// Horizontal bars, one per row, sized through the CSSOM (the page's CSP allows no style
// attributes). The table carries the numbers; the chart is one image whose name says what
// it shows, so a screen reader hears a summary instead of every bar.
function barChart(rows, label, measure) {
  const values = rows.map(measure.value);
  const largest = Math.max(1, ...values);
  const total = values.reduce((sum, value) => sum + value, 0);
  const top = rows
    .map((row, index) => ({ label: label(row), value: values[index] }))
    .sort((a, b) => b.value - a.value)
    .slice(0, 3)
    .map((entry) => `${entry.label} ${number.format(entry.value)}`);
  const summary =
    `${measure.label} per row, ${rows.length} row${rows.length === 1 ? "" : "s"}, ` +
    `${number.format(total)} in all; most: ${top.join(", ")}.`;
  const bars = rows.map((row, index) => {
    const bar = el("span", { class: "chart-bar" });
    // A row of zero has no bar; any other keeps a sliver, however small beside the largest.
    if (values[index] > 0) bar.style.width = `max(2px, ${(values[index] / largest) * 100}%)`;
    return el(
      "div",
      { class: "chart-row" },
      el("span", { class: "chart-label" }, label(row)),
      el("span", { class: "chart-track" }, bar),
      el("span", { class: "chart-value" }, number.format(values[index])),
    );
  });
  return el(
    "figure",
    { class: "chart" },
    el("figcaption", {}, `${measure.label} per row`),
    el("div", { class: "chart-bars", role: "img", "aria-label": summary }, bars),
  );
}
