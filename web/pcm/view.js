// The app's base view: Backbone.View on the DOM itself, without jQuery
// ====================================================================
//
// Backbone reaches the DOM through jQuery in five small methods that it leaves to be replaced
// (`_setElement`, `_setAttributes`, `_removeElement`, `delegate`, `undelegateEvents`), as
// backbone.nativeview does. Replacing them here keeps jQuery's 87 KB out of the page, which has no other
// use for it. What differs from jQuery's views:
//
// * there is no `this.$el` nor `this.$()`: a view uses `this.el` and `querySelector`;
// * a handler of a delegated event (`'click td.cell': 'onCellClick'`) gets the element its selector
//   matched as a second argument, `(e, cell)`, where jQuery would have set `e.currentTarget` (a native
//   event's own property, which the other listeners of the event still read);
// * `undelegate`, for one event, is not provided: the views never drop a single one.

import Backbone from 'backbone';

export const View = Backbone.View.extend({

  // `el` is an element, or a selector for one in the page (`'#summary'`).
  _setElement: function(el) {
    this.el = typeof el === 'string' ? document.querySelector(el) : el;
  },

  _setAttributes: function(attributes) {
    for (const [name, value] of Object.entries(attributes)) this.el.setAttribute(name, value);
  },

  _removeElement: function() {
    this.undelegateEvents();
    this.el.remove();
  },

  // A listener on the view's element; with a selector, it runs for each element between the event's
  // target and the view's element (exclusive) that matches it, innermost first, as in jQuery.
  delegate: function(eventName, selector, listener) {
    const root = this.el;
    const handler = !selector ? listener : (e) => {
      for (let node = e.target; node && node !== root; node = node.parentElement) {
        if (node.matches(selector)) listener(e, node);
      }
    };
    root.addEventListener(eventName, handler);
    this.domEvents = (this.domEvents || []).concat({ el: root, eventName, handler });
    return this;
  },

  undelegateEvents: function() {
    for (const { el, eventName, handler } of this.domEvents || []) el.removeEventListener(eventName, handler);
    this.domEvents = [];
    return this;
  },
});
