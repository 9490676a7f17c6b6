// Markdown of replies, rendered safely: markdown-it with raw HTML off escapes every tag
// a model writes, and refuses javascript:, vbscript:, file: and data: links. Links open
// in a new tab without access to this page. The page's CSP forbids inline scripts besides.

const renderer = window.markdownit({ html: false, linkify: true, breaks: true });
const defaultLinkOpen =
  renderer.renderer.rules.link_open ||
  ((tokens, index, options, env, self) => self.renderToken(tokens, index, options));
renderer.renderer.rules.link_open = (tokens, index, options, env, self) => {
  tokens[index].attrSet("target", "_blank");
  tokens[index].attrSet("rel", "noopener noreferrer nofollow");
  return defaultLinkOpen(tokens, index, options, env, self);
};

// Fill `node` with `text` rendered as Markdown.
export function renderMarkdown(node, text) {
  node.innerHTML = renderer.render(text || "");
  return node;
}
