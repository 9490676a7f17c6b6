// Markdown of replies, rendered safely: markdown-it with raw HTML off escapes every tag
// a model writes, and refuses javascript:, vbscript:, file: and data: links. Links open
// in a new tab without access to this page. The page's CSP forbids inline scripts besides.
//
// Images are never loaded: the CSP would refuse another host's image (and report it), and
// an image a model names should not make the reader's browser fetch anything. An image on
// the web (http, https) becomes a link to it, named by its alt text (else its address);
// any other (a data: image, a relative path) shows as its alt text only.

const renderer = window.markdownit({ html: false, linkify: true, breaks: true });
const { escapeHtml } = renderer.utils;
// Every link a reply makes: its own tab, no opener, no referrer, no endorsement.
const LINK_ATTRIBUTES = [
  ["target", "_blank"],
  ["rel", "noopener noreferrer nofollow"],
];
const WEB_ADDRESS = /^https?:\/\//i;

const defaultLinkOpen =
  renderer.renderer.rules.link_open ||
  ((tokens, index, options, env, self) => self.renderToken(tokens, index, options));
renderer.renderer.rules.link_open = (tokens, index, options, env, self) => {
  for (const [name, value] of LINK_ATTRIBUTES) tokens[index].attrSet(name, value);
  return defaultLinkOpen(tokens, index, options, env, self);
};

// A table column's alignment: markdown-it writes it as style="text-align:..." on each th
// and td, an inline style the page's CSP refuses (style-src 'self'). It becomes a class
// instead (align-left, align-center, align-right: chat-conversation.css).
const ALIGNMENT = /^text-align:\s*(left|center|right)$/;

function alignedByClass(rule) {
  const fallback =
    renderer.renderer.rules[rule] ||
    ((tokens, index, options, env, self) => self.renderToken(tokens, index, options));
  renderer.renderer.rules[rule] = (tokens, index, options, env, self) => {
    const token = tokens[index];
    const at = token.attrIndex("style");
    if (at >= 0) {
      const alignment = ALIGNMENT.exec(token.attrs[at][1].trim());
      token.attrs.splice(at, 1);
      if (alignment) token.attrJoin("class", `align-${alignment[1]}`);
    }
    return fallback(tokens, index, options, env, self);
  };
}
alignedByClass("th_open");
alignedByClass("td_open");

// True when the inline token at `index` is inside a link (an image as a link's text).
function insideLink(tokens, index) {
  let depth = 0;
  for (let at = 0; at < index; at += 1) {
    if (tokens[at].type === "link_open") depth += 1;
    else if (tokens[at].type === "link_close") depth -= 1;
  }
  return depth > 0;
}

renderer.renderer.rules.image = (tokens, index, options, env, self) => {
  const token = tokens[index];
  const source = token.attrGet("src") || "";
  const alt = self.renderInlineAsText(token.children || [], options, env).trim();
  if (!WEB_ADDRESS.test(source) || insideLink(tokens, index)) {
    // No link in a link; no link to a data: URL (a tab cannot open one) or to this site.
    return escapeHtml(alt ? `[image: ${alt}]` : "[image]");
  }
  const title = token.attrGet("title");
  const attributes = [["href", source], ...LINK_ATTRIBUTES, ...(title ? [["title", title]] : [])]
    .map(([name, value]) => ` ${name}="${escapeHtml(value)}"`)
    .join("");
  return `<a${attributes}>${escapeHtml(alt || source)}</a>`;
};

// Fill `node` with `text` rendered as Markdown.
export function renderMarkdown(node, text) {
  node.innerHTML = renderer.render(text || "");
  return node;
}
