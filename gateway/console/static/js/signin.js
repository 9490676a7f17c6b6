// Sign-in, shared by both pages: paste an API key (or, where JWT sign-in is configured, a
// token), checked with `me` before it is kept in this tab's sessionStorage.
import { ApiError, consoleSettings, credential, disconnect, gql } from "./api.js";
import { el, errorRegion, replaceChildren, showError } from "./ui.js";

const ME = "query Me { me { id name role } }";

async function currentUser() {
  return (await gql(ME)).me;
}

function signInForm(root, settings, done) {
  const errors = errorRegion();
  const keyField = el("input", {
    id: "signin-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const tokenField =
    settings.jwtSignIn &&
    el("textarea", { id: "signin-token", rows: "3", spellcheck: "false", autocomplete: "off" });

  async function tryCredential(value, button) {
    if (!value.trim()) {
      showError(errors, new ApiError("Paste a key or token first", { code: "BAD_USER_INPUT" }));
      return;
    }
    button.disabled = true;
    credential.set(value.trim());
    disconnect();
    try {
      done(await currentUser());
    } catch (error) {
      credential.clear();
      showError(errors, error);
    } finally {
      button.disabled = false;
    }
  }

  const keyButton = el("button", { type: "submit" }, "Sign in");
  const keyForm = el(
    "form",
    {
      class: "signin-form",
      onsubmit: (event) => {
        event.preventDefault();
        tryCredential(keyField.value, keyButton);
      },
    },
    el("label", { for: "signin-key" }, "API key"),
    keyField,
    el("p", { class: "hint" }, "Kept in this browser tab only, until you sign out or close it."),
    keyButton,
  );
  let tokenForm = null;
  if (tokenField) {
    const tokenButton = el("button", { type: "submit" }, "Sign in with token");
    tokenForm = el(
      "form",
      {
        class: "signin-form",
        onsubmit: (event) => {
          event.preventDefault();
          tryCredential(tokenField.value, tokenButton);
        },
      },
      el("label", { for: "signin-token" }, "Token"),
      tokenField,
      el("p", { class: "hint" }, "A JSON Web Token from your identity provider."),
      tokenButton,
    );
  }
  replaceChildren(
    root,
    el(
      "div",
      { class: "signin" },
      el("h2", {}, "Sign in"),
      errors,
      keyForm,
      tokenForm && el("p", { class: "or" }, "or"),
      tokenForm,
    ),
  );
  root.hidden = false;
  keyField.focus();
}

// Resolve with the signed-in user ({id, name, role}): the kept credential if it still
// works, else once the form's sign-in succeeds. `root` holds the form meanwhile.
export async function signIn(root) {
  if (credential.get()) {
    try {
      return await currentUser();
    } catch (error) {
      if (error.code !== "UNAUTHENTICATED") throw error;
      credential.clear();
    }
  }
  const settings = await consoleSettings();
  return new Promise((resolve) => {
    signInForm(root, settings, (me) => {
      root.hidden = true;
      root.replaceChildren();
      resolve(me);
    });
  });
}

export function signOut() {
  credential.clear();
  // The tab's storage holds nothing else worth keeping, and GraphiQL keeps its tabs and
  // headers (this credential among them) there too.
  sessionStorage.clear();
  disconnect();
  window.location.reload();
}
