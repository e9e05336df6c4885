// Building DOM nodes without HTML strings. Every piece of text, ours or the server's, goes in as a text
// node, so nothing a person types (or a matrix file says) can ever become markup. It also keeps the
// page free of inline styles and scripts, so it runs under a strict Content-Security-Policy.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Sets attributes: `class`, `dataset` (an object), `text` (the text content), booleans (present when
// true), and everything else as a plain attribute.
function assign(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
  }
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  return node;
}

// h('td', {class: 'cell', role: 'gridcell'}, 'text', otherNode, ...)
export function h(tag, attrs, ...children) {
  return append(assign(document.createElement(tag), attrs), children);
}

// The same for SVG elements.
export function s(tag, attrs, ...children) {
  return append(assign(document.createElementNS(SVG_NS, tag), attrs), children);
}

// Replaces all children of `node`.
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

// "1 person", "3 people"; "has"/"have".
export const people = (n) => `${n} ${n === 1 ? 'person' : 'people'}`;
