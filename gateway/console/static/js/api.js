// The gateway's API as the console uses it: GraphQL over HTTP (queries, mutations),
// GraphQL over WebSocket (graphql-transport-ws, through the vendored graphql-ws client) for
// subscriptions, and REST downloads, all with the signed-in credential.
//
// The credential lives in this tab's sessionStorage only: it goes when the tab closes and
// is never shared with another tab or written anywhere else.

const CREDENTIAL_KEY = "cgw.credential";
const GRAPHQL_PATH = "/graphql";

export const credential = {
  get() {
    return sessionStorage.getItem(CREDENTIAL_KEY);
  },
  set(value) {
    sessionStorage.setItem(CREDENTIAL_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(CREDENTIAL_KEY);
  },
};

// An error as the API states it: `code` is GraphQL's extensions.code (RATE_LIMITED,
// MODEL_ERROR, NOT_FOUND, FORBIDDEN, UNAUTHENTICATED, BAD_USER_INPUT...) or REST's
// envelope code; `retryAfter` is in seconds when the server gave one.
export class ApiError extends Error {
  constructor(message, { code = "ERROR", retryAfter = null, field = null, status = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.retryAfter = retryAfter;
    this.field = field;
    this.status = status;
  }
}

function authorization() {
  const token = credential.get();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function fromGraphQLError(error, status = null) {
  const extensions = (error && error.extensions) || {};
  const retryAfter = extensions.retryAfter ?? null;
  return new ApiError((error && error.message) || "The request failed", {
    code: extensions.code || "ERROR",
    retryAfter: retryAfter === null ? null : Number(retryAfter),
    field: extensions.field ?? null,
    status,
  });
}

// Run a query or mutation; resolves with `data`, rejects with an ApiError (the first
// error of the answer: every operation the console sends has one root field that matters).
export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        ...authorization(),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (cause) {
    throw new ApiError("The server cannot be reached", { code: "NETWORK" });
  }
  let body = null;
  try {
    body = await response.json();
  } catch (cause) {
    throw new ApiError(`The server answered ${response.status}`, {
      code: "HTTP",
      status: response.status,
    });
  }
  if (body.errors && body.errors.length) {
    throw fromGraphQLError(body.errors[0], response.status);
  }
  return body.data;
}

let socketClient = null;
// Dispatched on window when the WebSocket is open again after it dropped.
export const RECONNECTED = "cgw:reconnected";

function websocketUrl() {
  const url = new URL(GRAPHQL_PATH, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

function client() {
  if (socketClient === null) {
    // window.graphqlWs: the vendored UMD build (vendor/graphql-ws.min.js).
    socketClient = window.graphqlWs.createClient({
      url: websocketUrl(),
      lazy: true,
      retryAttempts: 5,
      // Read at every (re)connection: a sign-in after a sign-out uses the new credential.
      connectionParams: () => authorization(),
      on: {
        // graphql-ws re-subscribes by itself after a dropped connection, silently: what
        // was stored meanwhile never arrives, so whoever follows live data catches up.
        connected: (socket, payload, wasRetry) => {
          if (wasRetry) window.dispatchEvent(new Event(RECONNECTED));
        },
      },
    });
  }
  return socketClient;
}

// Start a subscription. handlers: next(data), error(ApiError), complete(). Returns a
// function that ends it. An answer's GraphQL errors end it with `error`.
export function subscribe(query, variables, handlers) {
  let ended = false;
  const finish = (callback, value) => {
    if (!ended) {
      ended = true;
      if (callback) callback(value);
    }
  };
  const dispose = client().subscribe(
    { query, variables },
    {
      next(result) {
        if (ended) return;
        if (result.errors && result.errors.length) {
          finish(handlers.error, fromGraphQLError(result.errors[0]));
          dispose();
          return;
        }
        if (handlers.next) handlers.next(result.data);
      },
      error(problem) {
        let error;
        if (Array.isArray(problem) && problem.length) {
          error = fromGraphQLError(problem[0]);
        } else if (problem && typeof problem.code === "number") {
          // A CloseEvent: the connection ended (4403 forbidden, 4401 unauthorised...).
          error = new ApiError(problem.reason || "The live connection was closed", {
            code: problem.code === 4403 ? "FORBIDDEN" : "CONNECTION_CLOSED",
          });
        } else {
          error = new ApiError("The live connection failed", { code: "NETWORK" });
        }
        finish(handlers.error, error);
      },
      complete() {
        finish(handlers.complete);
      },
    },
  );
  return () => {
    ended = true;
    dispose();
  };
}

// Close the WebSocket (at sign-out: the next subscription connects with the new credential).
export function disconnect() {
  if (socketClient !== null) {
    socketClient.dispose();
    socketClient = null;
  }
}

// GET a REST download (an export); resolves with { blob, filename }.
export async function download(path) {
  let response;
  try {
    response = await fetch(path, { headers: authorization() });
  } catch (cause) {
    throw new ApiError("The server cannot be reached", { code: "NETWORK" });
  }
  if (!response.ok) {
    let message = `The server answered ${response.status}`;
    let code = "HTTP";
    try {
      const body = await response.json();
      message = body.message || body.detail || message;
      code = String(body.code || code);
    } catch (cause) {
      // not the envelope: keep the status
    }
    const retryAfter = response.headers.get("Retry-After");
    throw new ApiError(message, {
      code: response.status === 429 ? "RATE_LIMITED" : code,
      retryAfter: retryAfter === null ? null : Number(retryAfter),
      status: response.status,
    });
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename="?([^";]+)"?/i.exec(disposition);
  return { blob: await response.blob(), filename: named ? named[1] : "download" };
}

// A retry key for sends, regenerations and forks: kept with the request so a retry
// after an error stores nothing twice.
export function newClientMessageId() {
  // randomUUID needs a secure context (https or localhost); getRandomValues does not.
  if (window.isSecureContext && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

let settingsAnswer = null;

// The server's public settings for the pages (sign-in options, GraphiQL): asked once.
export function consoleSettings() {
  if (settingsAnswer === null) {
    settingsAnswer = fetch("/console/settings.json").then((response) => response.json());
    settingsAnswer.catch(() => {
      settingsAnswer = null; // a failed read is asked again next time
    });
  }
  return settingsAnswer;
}
