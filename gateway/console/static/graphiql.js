// GraphiQL on GET /graphql (gateway/graphiql.html): React, GraphiQL and its explorer
// plugin are this server's own files (vendor/graphiql/), classic scripts that set globals
// (React, ReactDOM, GraphiQL, GraphiQLPluginExplorer) and run before this module (deferred
// scripts and modules run in the page's order), so the page needs no CDN and its
// Content-Security-Policy allows this origin only.
//
// The credential: the Headers tab starts with the web console's when this tab is signed
// in to it, else with a template to paste a key into. What GraphiQL keeps (tabs, history,
// whose entries hold the headers they ran with) it keeps in this tab's sessionStorage, as
// the console keeps its credential: nothing of a key outlives the tab.
import { credential } from "/console/js/api.js";

const EXAMPLE_QUERY = `# ai-chat-gateway GraphQL API
#
# 1. Paste your API key into the Headers tab below, as
#      { "Authorization": "Bearer cgw_..." }
#    (\`make serve\` prints a first admin key; \`chat-gateway user create\` makes more).
#    Signed in to the web console in this tab? Its credential is there already.
# 2. Press the run button (or Ctrl-Enter).
#
# The Docs button on the left shows every type, query, mutation and subscription.

{
  me {
    name
    role
  }
}
`;
const DEFAULT_HEADERS = JSON.stringify(
  { Authorization: "Bearer <paste your API key here>" },
  null,
  2,
);
// The web console's credential in this tab (js/api.js keeps it), as a Headers tab.
function consoleHeaders() {
  let token = null;
  try {
    token = credential.get();
  } catch {
    // Storage switched off: the template it is.
  }
  if (!token) return null;
  return JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2);
}

// GraphiQL's storage (it adds the "graphiql:" prefix), in sessionStorage; clearing it
// ("Clear storage" in its settings) leaves the console's credential alone.
const NAMESPACE = "graphiql:";
const tabStorage = {
  getItem: (key) => window.sessionStorage.getItem(key),
  setItem: (key, value) => window.sessionStorage.setItem(key, value),
  removeItem: (key) => window.sessionStorage.removeItem(key),
  get length() {
    return Object.keys(window.sessionStorage).filter((key) => key.startsWith(NAMESPACE))
      .length;
  },
  clear() {
    for (const key of Object.keys(window.sessionStorage)) {
      if (key.startsWith(NAMESPACE)) window.sessionStorage.removeItem(key);
    }
  },
};

// URL parameters, for sharing a query: ?q=...&variables=...&headers=...
// A key in ?headers= is taken, then dropped from the address (and so from the history).
const parameters = Object.fromEntries(new URLSearchParams(window.location.search));
const sharedHeaders = parameters.headers;
delete parameters.headers;

function updateURL(data) {
  Object.assign(parameters, data);

  const newSearch =
    "?" +
    Object.keys(parameters)
      .filter((key) => Boolean(parameters[key]))
      .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
      .join("&");
  history.replaceState(null, null, newSearch);
}

if (sharedHeaders !== undefined) updateURL({});

const fetchURL = window.location.href.split("?")[0];

function httpUrlToWebSockeUrl(url) {
  const parsedURL = new URL(url);
  parsedURL.protocol = parsedURL.protocol === "http:" ? "ws:" : "wss:";
  parsedURL.hash = "";
  return parsedURL.toString();
}

// Subscriptions go over graphql-transport-ws on the same URL; the Headers tab is sent
// as the connection_init payload, where the gateway reads the credential.
const subscriptionUrl = httpUrlToWebSockeUrl(fetchURL);

const fetcher = GraphiQL.createFetcher({
  url: fetchURL,
  subscriptionUrl,
});

const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

function GraphiQLWithExplorer() {
  const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
  const [variables, setVariables] = React.useState(parameters.variables);
  const [headers, setHeaders] = React.useState(sharedHeaders);

  function onEditQuery(newQuery) {
    setQuery(newQuery);
    updateURL({ q: newQuery });
  }

  function onEditVariables(newVariables) {
    setVariables(newVariables);
    updateURL({ variables: newVariables });
  }

  function onEditHeaders(newHeaders) {
    // Never into the address: it would keep the key in the history.
    setHeaders(newHeaders);
  }

  return React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    plugins: [explorerPlugin],
    query: query,
    variables: variables,
    headers: headers,
    defaultHeaders: consoleHeaders() || DEFAULT_HEADERS,
    onEditQuery: onEditQuery,
    onEditVariables: onEditVariables,
    onEditHeaders: onEditHeaders,
    inputValueDeprecation: true,
    isHeadersEditorEnabled: true,
    // Each load starts from the console's credential or the template.
    shouldPersistHeaders: false,
    storage: tabStorage,
  });
}

const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(React.createElement(GraphiQLWithExplorer));
