// The "Model configs" tab: the configs as a table; one selected at a time to edit (its
// parameters as JSON, checked as they are typed) with its version history and rollback;
// a form for a new config.
import { gql } from "../api.js";
import {
  announce,
  button,
  clearError,
  el,
  errorRegion,
  formatTime,
  replaceChildren,
  showError,
  statusRegion,
  uniqueId,
} from "../ui.js";
import {
  busy,
  canonicalJson,
  checkbox,
  field,
  jsonDetails,
  loadMore,
  table,
  tableRow,
} from "./common.js";

const CONFIG_FIELDS = "id modelName modelVersion provider version isDefault updatedAt";
const LIST = `query AdminModelConfigs { modelConfigs { ${CONFIG_FIELDS} } }`;
const VERSIONS = `versions(first: 20, after: $after) {
  totalCount
  edges { node { version createdAt changedFields snapshot actor { name } } }
  pageInfo { hasNextPage endCursor }
}`;
const ONE = `query AdminModelConfig($id: ID!, $after: String) {
  modelConfig(id: $id) { ${CONFIG_FIELDS} parameters baseUrl apiKeyEnv ${VERSIONS} }
}`;
const MORE_VERSIONS = `query AdminModelConfigVersions($id: ID!, $after: String) {
  modelConfig(id: $id) { id ${VERSIONS} }
}`;
const UPDATE = `mutation AdminUpdateModelConfig($id: ID!, $input: UpdateModelConfigInput!) {
  updateModelConfig(id: $id, input: $input) { id version }
}`;
const CREATE = `mutation AdminCreateModelConfig($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { id version }
}`;
const ROLLBACK = `mutation AdminRollbackModelConfig($id: ID!, $version: Int!) {
  rollbackModelConfig(id: $id, version: $version) { id version }
}`;

// The server names a refused field as in the API (modelName) or as stored (model_name).
const FIELD_OF_SERVER_NAME = {
  modelName: "modelName",
  model_name: "modelName",
  modelVersion: "modelVersion",
  model_version: "modelVersion",
  provider: "provider",
  baseUrl: "baseUrl",
  base_url: "baseUrl",
  apiKeyEnv: "apiKeyEnv",
  api_key_env: "apiKeyEnv",
  isDefault: "isDefault",
  is_default: "isDefault",
  parameters: "parameters",
};

// The text of the Parameters field -> { value } (a JSON object) or { error }.
export function parseParameters(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `Not valid JSON: ${error.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: 'Must be a JSON object, such as {} or {"prefix": "Echo: "}.' };
  }
  return { value };
}

export function initConfigs(panel) {
  const errors = errorRegion();
  const status = statusRegion();
  const listHolder = el("div", { class: "config-list" });
  const editorHolder = el("div", { class: "config-editor" });
  let configs = [];
  let selectedId = null;
  // Answers of an earlier selection that arrive late are dropped.
  let loadSerial = 0;

  const newButton = button("New model config", () => showCreateForm());
  const refreshButton = button("Refresh", () => refresh(), { class: "secondary" });
  panel.append(
    el(
      "div",
      { class: "tab-head" },
      el("h2", {}, "Model configs"),
      el("div", { class: "row" }, newButton, refreshButton),
    ),
    errors,
    status,
    listHolder,
    editorHolder,
  );

  async function loadList() {
    configs = (await gql(LIST)).modelConfigs;
    replaceChildren(listHolder, configTable());
  }

  function configTable() {
    const rows = configs.map((config) =>
      tableRow([
        {
          header: true,
          content: button(config.modelName, () => select(config.id), {
            class: "link",
            "aria-current": config.id === selectedId ? "true" : null,
          }),
        },
        config.modelVersion,
        config.provider,
        String(config.version),
        config.isDefault ? "Yes" : "No",
        formatTime(config.updatedAt),
      ]),
    );
    return table(
      "Model configs",
      ["Model name", "Model version", "Provider", "Version", "Default", "Updated"],
      rows,
      { emptyText: "No model configs yet." },
    ).node;
  }

  // Reload the list and, if one is selected, its editor and history.
  async function refresh() {
    clearError(errors);
    await busy(refreshButton, panel, async () => {
      try {
        await loadList();
        if (selectedId) await loadSelected(selectedId);
      } catch (error) {
        showError(errors, error, { retry: refresh });
      }
    });
  }

  async function select(id) {
    selectedId = id;
    clearError(errors);
    announce(status, "");
    replaceChildren(listHolder, configTable());
    try {
      await loadSelected(id, { focus: true });
    } catch (error) {
      showError(errors, error, { retry: () => select(id) });
    }
  }

  async function loadSelected(id, { focus = false } = {}) {
    const serial = ++loadSerial;
    const config = (await gql(ONE, { id, after: null })).modelConfig;
    if (serial !== loadSerial) return;
    if (!config) {
      selectedId = null;
      replaceChildren(editorHolder);
      announce(status, "That model config is gone.");
      return;
    }
    const heading = el(
      "h3",
      { id: uniqueId("admin-editor-title"), tabindex: "-1" },
      `Edit ${config.modelName}`,
    );
    replaceChildren(
      editorHolder,
      el(
        "section",
        { class: "panel stack", "aria-label": `Model config ${config.modelName}` },
        configForm({ config, heading }),
        versionHistory(config),
      ),
    );
    if (focus) heading.focus();
  }

  function showCreateForm() {
    selectedId = null;
    loadSerial += 1;
    clearError(errors);
    announce(status, "");
    replaceChildren(listHolder, configTable());
    const heading = el(
      "h3",
      { id: uniqueId("admin-editor-title"), tabindex: "-1" },
      "New model config",
    );
    replaceChildren(
      editorHolder,
      el("section", { class: "panel stack" }, configForm({ config: null, heading })),
    );
    heading.focus();
  }

  // The edit form (config given) or the create form (config null). Saving an edit sends
  // only the fields that changed.
  function configForm({ config, heading }) {
    const creating = config === null;
    const formErrors = errorRegion();
    const providers = [...new Set(["echo", ...configs.map((item) => item.provider)])];
    const datalist = el(
      "datalist",
      { id: uniqueId("admin-providers") },
      providers.map((name) => el("option", { value: name })),
    );
    const text = (value, attributes = {}) => {
      const input = el("input", {
        type: "text",
        autocomplete: "off",
        spellcheck: "false",
        ...attributes,
      });
      input.value = value ?? "";
      return input;
    };
    const fields = {
      modelName: field("Model name", text(config && config.modelName, { required: true })),
      modelVersion: field(
        "Model version",
        text(config ? config.modelVersion : "1", { required: true }),
      ),
      provider: field(
        "Provider",
        text(config ? config.provider : "echo", { required: true, list: datalist.id }),
        {
          hint: "echo (built in) or openai (any OpenAI-compatible server).",
        },
      ),
      baseUrl: field("Base URL", text(config && config.baseUrl, { inputmode: "url" }), {
        hint: "The provider's endpoint, for network providers. Empty: none.",
      }),
      apiKeyEnv: field("API key variable", text(config && config.apiKeyEnv), {
        hint: "The NAME of the server's environment variable holding the key, never the key.",
      }),
    };
    const isDefault = checkbox("Default", { checked: Boolean(config && config.isDefault) });
    const parametersInput = el("textarea", { rows: "6", spellcheck: "false", class: "code" });
    parametersInput.value = JSON.stringify(config ? config.parameters : {}, null, 2);
    fields.parameters = field("Parameters (JSON)", parametersInput, {
      hint: "A JSON object of the model's parameters; never a secret.",
    });
    const submit = el("button", { type: "submit" }, creating ? "Create" : "Save");
    const close = button(
      creating ? "Cancel" : "Close",
      () => {
        selectedId = null;
        replaceChildren(editorHolder);
        replaceChildren(listHolder, configTable());
      },
      { class: "secondary" },
    );

    let parsed = parseParameters(parametersInput.value);
    function checkParameters() {
      parsed = parseParameters(parametersInput.value);
      fields.parameters.setError(parsed.error || null);
      submit.disabled = Boolean(parsed.error);
    }
    parametersInput.addEventListener("input", checkParameters);
    // A field the server refused is marked until it is edited.
    for (const [name, entry] of Object.entries(fields)) {
      if (name !== "parameters")
        entry.control.addEventListener("input", () => entry.setError(null));
    }

    function values() {
      const trimmed = (name) => fields[name].control.value.trim();
      return {
        modelName: trimmed("modelName"),
        modelVersion: trimmed("modelVersion"),
        provider: trimmed("provider"),
        // Empty clears: the API takes null as "none".
        baseUrl: trimmed("baseUrl") || null,
        apiKeyEnv: trimmed("apiKeyEnv") || null,
        isDefault: isDefault.input.checked,
        parameters: parsed.value,
      };
    }

    function changes() {
      const now = values();
      const input = {};
      for (const name of [
        "modelName",
        "modelVersion",
        "provider",
        "baseUrl",
        "apiKeyEnv",
        "isDefault",
      ]) {
        if (now[name] !== (config[name] ?? null)) input[name] = now[name];
      }
      if (canonicalJson(now.parameters) !== canonicalJson(config.parameters)) {
        input.parameters = now.parameters;
      }
      return input;
    }

    function createInput() {
      const input = values();
      if (input.baseUrl === null) delete input.baseUrl;
      if (input.apiKeyEnv === null) delete input.apiKeyEnv;
      return input;
    }

    function showRefusal(error) {
      showError(formErrors, error);
      const name = error.field && FIELD_OF_SERVER_NAME[String(error.field).replace(/^input\./, "")];
      if (name && fields[name]) {
        fields[name].setError(error.message);
        fields[name].control.focus();
      }
    }

    async function save(event) {
      event.preventDefault();
      checkParameters();
      if (parsed.error) {
        parametersInput.focus();
        return;
      }
      clearError(formErrors);
      await busy(submit, form, async () => {
        try {
          if (creating) {
            const created = (await gql(CREATE, { input: createInput() })).createModelConfig;
            selectedId = created.id;
            await loadList();
            await loadSelected(created.id, { focus: true });
            announce(status, `Created ${values().modelName}: version ${created.version}.`);
            return;
          }
          const input = changes();
          if (Object.keys(input).length === 0) {
            announce(status, "Nothing changed: nothing to save.");
            return;
          }
          const updated = (await gql(UPDATE, { id: config.id, input })).updateModelConfig;
          await loadList();
          await loadSelected(config.id, { focus: true });
          announce(status, `Saved ${values().modelName}: now version ${updated.version}.`);
        } catch (error) {
          showRefusal(error);
        }
      });
      // busy() enabled the button again: keep it off while the JSON is invalid.
      submit.disabled = Boolean(parsed.error);
    }

    const form = el(
      "form",
      {
        class: "stack config-form",
        "aria-labelledby": heading.id,
        novalidate: true,
        onsubmit: save,
      },
      heading,
      config &&
        el(
          "p",
          { class: "hint" },
          `Version ${config.version} · updated ${formatTime(config.updatedAt)} · id ${config.id}`,
        ),
      formErrors,
      el(
        "div",
        { class: "form-grid" },
        fields.modelName.node,
        fields.modelVersion.node,
        fields.provider.node,
        fields.baseUrl.node,
        fields.apiKeyEnv.node,
      ),
      datalist,
      isDefault.node,
      fields.parameters.node,
      el("div", { class: "row" }, submit, close),
    );
    return form;
  }

  // The selected config's versions, newest first, each (but the current one) with a
  // rollback button; more pages on demand.
  function versionHistory(config) {
    const historyErrors = errorRegion();
    const { node: list, body } = table(
      `Versions of ${config.modelName}, newest first`,
      ["Version", "Changed", "By", "Changed fields", "Snapshot", "Action"],
      [],
      { emptyText: null }, // a config has a version from its start; addPage fills it
    );
    const headingId = uniqueId("admin-history");
    const count = el("p", { class: "hint", tabindex: "-1" });
    let nextCursor = null;
    // One button for every page (it keeps the focus); hidden on the last page.
    const moreButton = button("Load more versions", () => nextPage(), {
      class: "secondary",
      hidden: true,
    });

    function addPage(connection) {
      count.textContent = `${connection.totalCount} version${connection.totalCount === 1 ? "" : "s"}`;
      for (const { node } of connection.edges) body.append(versionRow(node));
      nextCursor = connection.pageInfo.endCursor;
      moreButton.hidden = !connection.pageInfo.hasNextPage;
    }

    function nextPage() {
      const pager = {
        button: moreButton,
        region: body,
        errors: historyErrors,
        retry: nextPage,
        landing: count,
      };
      return loadMore(pager, async () => {
        const next = await gql(MORE_VERSIONS, { id: config.id, after: nextCursor });
        addPage(next.modelConfig.versions);
      });
    }

    function versionRow(version) {
      const current = version.version === config.version;
      return tableRow([
        { header: true, content: String(version.version) },
        formatTime(version.createdAt),
        version.actor ? version.actor.name : "system",
        version.changedFields.length ? version.changedFields.join(", ") : "none",
        jsonDetails(version.snapshot, "Snapshot"),
        current
          ? el("span", { class: "hint" }, "Current")
          : button(
              `Roll back to version ${version.version}`,
              (event) => rollback(version.version, event.currentTarget),
              { class: "secondary" },
            ),
      ]);
    }

    async function rollback(version, clicked) {
      const question =
        `Roll back ${config.modelName} to version ${version}? ` +
        "This adds a new version with version " +
        `${version}'s values (the Default flag stays as it is); every reply from now on uses them.`;
      if (!window.confirm(question)) return;
      clearError(historyErrors);
      await busy(clicked, null, async () => {
        try {
          const result = (await gql(ROLLBACK, { id: config.id, version })).rollbackModelConfig;
          await loadList();
          await loadSelected(config.id, { focus: true });
          announce(
            status,
            `Rolled ${config.modelName} back to version ${version}: now version ${result.version}.`,
          );
        } catch (error) {
          showError(historyErrors, error);
        }
      });
    }

    addPage(config.versions);
    return el(
      "section",
      { class: "stack", "aria-labelledby": headingId },
      el("h3", { id: headingId }, "Version history"),
      count,
      historyErrors,
      list,
      el("div", { class: "row" }, moreButton),
    );
  }

  refresh();
  return {};
}
