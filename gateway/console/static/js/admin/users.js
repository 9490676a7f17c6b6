// The "Users" tab: every user (newest first) with their role, state and keys; make admin or
// user, disable, list and revoke a user's keys, create a user (their first key is shown
// once) and a new key for oneself (shown once too).
import { credential, gql } from "../api.js";
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
import { busy, field, loadMore, secretBox, table, tableRow } from "./common.js";

const KEY_FIELDS = "id prefix label createdAt lastUsedAt";
const USER_FIELDS = `id name role createdAt disabledAt apiKeys { ${KEY_FIELDS} }`;
const USERS = `query AdminUsers($after: String) {
  users(first: 50, after: $after) {
    totalCount
    edges { node { ${USER_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const SET_ROLE = `mutation AdminSetUserRole($id: ID!, $role: Role!) {
  setUserRole(id: $id, role: $role) { ${USER_FIELDS} }
}`;
const DISABLE = `mutation AdminDisableUser($id: ID!) { disableUser(id: $id) { ${USER_FIELDS} } }`;
const REVOKE = `mutation AdminRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { id prefix } }`;
const CREATE_USER = `mutation AdminCreateUser($name: String!, $role: Role!) {
  createUser(name: $name, role: $role) { key user { ${USER_FIELDS} } }
}`;
const CREATE_KEY = `mutation AdminCreateApiKey($label: String) {
  createApiKey(label: $label) { key apiKey { ${KEY_FIELDS} } }
}`;

// A button whose visible text is the verb and whose accessible name adds what it acts on
// ("Disable: alice"), so each of a table's buttons has a name of its own; the name starts
// with the visible text (speech control users say what they see).
function actionButton(verb, target, onclick, { action, kind = "secondary" } = {}) {
  return button(verb, onclick, {
    class: kind,
    dataset: { action },
    "aria-label": `${verb}: ${target}`,
  });
}

const roleName = (role) => (role === "ADMIN" ? "Admin" : "User");

export function initUsers(panel, { me }) {
  const errors = errorRegion();
  const status = statusRegion();
  const formHolder = el("div", { class: "user-forms" });
  const count = el("p", { class: "hint", tabindex: "-1" });
  const keysHolder = el("div", { class: "user-keys" });
  let users = [];
  let nextCursor = null;
  let total = 0; // users in the whole list
  let keysOf = null; // the user whose keys show

  const newUser = button("New user", () => showNewUserForm());
  const newKey = button("New key for me", () => showNewKeyForm(), { class: "secondary" });
  const moreButton = button("Load more users", () => load({ more: true }), {
    class: "secondary",
    hidden: true,
  });
  // The count says how many show: the table has no empty text of its own.
  const { node: list, body } = table(
    "Users, newest first",
    ["Name", "Role", "Created", "Disabled", "Keys", "Actions"],
    [],
    { emptyText: null },
  );
  panel.append(
    el(
      "div",
      { class: "tab-head" },
      el("h2", {}, "Users"),
      el("div", { class: "row" }, newUser, newKey),
    ),
    errors,
    status,
    formHolder,
    count,
    list,
    el("div", { class: "row" }, moreButton),
    keysHolder,
  );

  // The first page (more: false), or the next one ("Load more users").
  function load({ more = false } = {}) {
    const pager = {
      button: more ? moreButton : null,
      region: list,
      errors,
      retry: () => load({ more }),
      landing: count,
    };
    return loadMore(pager, async () => {
      const connection = (await gql(USERS, { after: more ? nextCursor : null })).users;
      if (!more) users = [];
      users.push(...connection.edges.map((edge) => edge.node));
      nextCursor = connection.pageInfo.endCursor;
      moreButton.hidden = !connection.pageInfo.hasNextPage;
      total = connection.totalCount;
      showCount();
      body.replaceChildren(...users.map(userRow));
    });
  }

  function showCount() {
    count.textContent = `Showing ${users.length} of ${total} users.`;
  }

  function userRow(user) {
    const isMe = user.id === me.id;
    const makeRole = user.role === "ADMIN" ? "USER" : "ADMIN";
    return tableRow(
      [
        { header: true, content: isMe ? `${user.name} (you)` : user.name },
        roleName(user.role),
        formatTime(user.createdAt),
        user.disabledAt ? formatTime(user.disabledAt) : "No",
        String(user.apiKeys.length),
        el(
          "div",
          { class: "row actions" },
          actionButton(
            `Make ${roleName(makeRole).toLowerCase()}`,
            user.name,
            (event) => setRole(user, makeRole, event.currentTarget),
            {
              action: "role",
            },
          ),
          // Nobody disables themselves (the server refuses it too).
          !isMe &&
            !user.disabledAt &&
            actionButton("Disable", user.name, (event) => disable(user, event.currentTarget), {
              action: "disable",
              kind: "danger",
            }),
          actionButton("Keys", user.name, () => showKeys(user), { action: "keys" }),
        ),
      ],
      { dataset: { userId: user.id } },
    );
  }

  // Put a changed user in the list and its row in the table. `focusAction`: the action
  // whose button had the focus (a button loses it while disabled during its request); it
  // goes to the same action in the new row, or the row's first button if that is gone.
  function replaceUser(user, { focusAction = null } = {}) {
    const index = users.findIndex((item) => item.id === user.id);
    if (index < 0) {
      // A user just created: newest first, as the list is ordered.
      users.unshift(user);
      total += 1;
      showCount();
    } else {
      users[index] = user;
    }
    const old = body.querySelector(`tr[data-user-id="${CSS.escape(user.id)}"]`);
    const row = userRow(user);
    if (old) old.replaceWith(row);
    else body.prepend(row);
    if (focusAction) {
      const again = row.querySelector(`[data-action="${focusAction}"]`);
      (again || row.querySelector("button")).focus();
    }
    if (keysOf && keysOf.id === user.id) showKeys(user, { focus: false });
  }

  async function setRole(user, role, clicked) {
    if (user.id === me.id && role === "USER") {
      const sure = window.confirm(
        "Make yourself a plain user? You lose this page at your next reload.",
      );
      if (!sure) return;
    }
    clearError(errors);
    await busy(clicked, null, async () => {
      try {
        const changed = (await gql(SET_ROLE, { id: user.id, role })).setUserRole;
        replaceUser(changed, { focusAction: "role" });
        announce(status, `${changed.name} is now ${roleName(changed.role).toLowerCase()}.`);
      } catch (error) {
        showError(errors, error);
      }
    });
  }

  async function disable(user, clicked) {
    const sure = window.confirm(
      `Disable ${user.name}? None of their keys will work any more, at once; their data stays.`,
    );
    if (!sure) return;
    clearError(errors);
    await busy(clicked, null, async () => {
      try {
        const changed = (await gql(DISABLE, { id: user.id })).disableUser;
        replaceUser(changed, { focusAction: "disable" });
        announce(status, `${changed.name} is disabled.`);
      } catch (error) {
        showError(errors, error);
      }
    });
  }

  // The user's unrevoked keys, each with "Revoke".
  function showKeys(user, { focus = true } = {}) {
    keysOf = user;
    const keyErrors = errorRegion();
    const headingId = uniqueId("admin-keys");
    const heading = el("h3", { id: headingId, tabindex: "-1" }, `Keys of ${user.name}`);
    const rows = user.apiKeys.map((key) =>
      tableRow([
        { header: true, content: el("code", {}, `${key.prefix}…`) },
        key.label || "—",
        formatTime(key.createdAt),
        key.lastUsedAt ? formatTime(key.lastUsedAt) : "Never",
        actionButton(
          "Revoke",
          `key ${key.prefix}`,
          (event) => revoke(user, key, event.currentTarget, keyErrors),
          {
            action: "revoke",
            kind: "danger",
          },
        ),
      ]),
    );
    replaceChildren(
      keysHolder,
      el(
        "section",
        { class: "panel stack", "aria-labelledby": headingId },
        heading,
        keyErrors,
        user.apiKeys.length === 0
          ? el("p", { class: "hint" }, "No working keys.")
          : table(
              `API keys of ${user.name}`,
              ["Prefix", "Label", "Created", "Last used", "Action"],
              rows,
            ).node,
        button(
          "Close keys",
          () => {
            keysOf = null;
            replaceChildren(keysHolder);
          },
          { class: "secondary" },
        ),
      ),
    );
    if (focus) heading.focus();
  }

  async function revoke(user, key, clicked, keyErrors) {
    const own = (credential.get() || "").startsWith(key.prefix);
    const sure = window.confirm(
      own
        ? `Revoke ${key.prefix}…? It is the key you are signed in with: this page stops working.`
        : `Revoke ${user.name}'s key ${key.prefix}…? It stops working at once.`,
    );
    if (!sure) return;
    clearError(keyErrors);
    await busy(clicked, null, async () => {
      try {
        await gql(REVOKE, { id: key.id });
        const changed = { ...user, apiKeys: user.apiKeys.filter((item) => item.id !== key.id) };
        replaceUser(changed);
        announce(status, `Key ${key.prefix}… of ${user.name} revoked.`);
        const heading = keysHolder.querySelector("h3");
        if (heading) heading.focus();
      } catch (error) {
        showError(keyErrors, error);
      }
    });
  }

  // A small form in formHolder; `submit(values)` does the work and returns the node that
  // replaces the form (the secret box).
  function smallForm(title, fields, submitText, submit) {
    const headingId = uniqueId("admin-form");
    const formErrors = errorRegion();
    const submitButton = el("button", { type: "submit" }, submitText);
    const form = el(
      "form",
      {
        class: "panel stack",
        "aria-labelledby": headingId,
        onsubmit: async (event) => {
          event.preventDefault();
          clearError(formErrors);
          await busy(submitButton, form, async () => {
            try {
              const shown = await submit();
              replaceChildren(formHolder, shown);
              const copy = shown.querySelector("input");
              if (copy) copy.focus();
            } catch (error) {
              showError(formErrors, error);
            }
          });
        },
      },
      el("h3", { id: headingId }, title),
      formErrors,
      fields.map((entry) => entry.node),
      el(
        "div",
        { class: "row" },
        submitButton,
        button("Cancel", () => replaceChildren(formHolder), { class: "secondary" }),
      ),
    );
    replaceChildren(formHolder, form);
    fields[0].control.focus();
  }

  function showNewUserForm() {
    const name = field("Name", el("input", { type: "text", required: true, autocomplete: "off" }));
    const role = field(
      "Role",
      el(
        "select",
        {},
        el("option", { value: "USER" }, "User"),
        el("option", { value: "ADMIN" }, "Admin"),
      ),
    );
    smallForm("New user", [name, role], "Create user", async () => {
      const created = (
        await gql(CREATE_USER, { name: name.control.value.trim(), role: role.control.value })
      ).createUser;
      replaceUser(created.user);
      announce(status, `${created.user.name} created.`);
      return secretBox(`Key of ${created.user.name}`, created.key, {
        onDone: () => newUser.focus(),
      });
    });
  }

  function showNewKeyForm() {
    const label = field("Label", el("input", { type: "text", autocomplete: "off" }), {
      hint: "Optional: what the key is for.",
    });
    smallForm("New key for me", [label], "Create key", async () => {
      const created = (await gql(CREATE_KEY, { label: label.control.value.trim() || null }))
        .createApiKey;
      const mine = users.find((user) => user.id === me.id);
      if (mine) replaceUser({ ...mine, apiKeys: [...mine.apiKeys, created.apiKey] });
      announce(status, `New key ${created.apiKey.prefix}… created.`);
      return secretBox("Your new key", created.key, { onDone: () => newKey.focus() });
    });
  }

  load();
  return {};
}
