/**
 * Puts a freshly built list into the page while keeping every element whose content did not
 * change. The app rebuilds its lists on every event from the service (a message, a receipt, a
 * relay coming back); replacing them wholesale took from the person what they were doing with an
 * unchanged element: a box they unticked in the fork form came back ticked, text they were
 * selecting was deselected, and a finding they were reading was swapped for a copy mid-read.
 */

/** One element of the list as it should be now, under a key that names what it shows. */
export interface KeyedElement {
  /** Unique in the list: a message id, a member's address, a relay URL. */
  readonly key: string;
  readonly element: Element;
}

const keyOf = new WeakMap<Element, string>();

/**
 * Makes `parent`'s children the given elements, in order. Where the page already shows an element
 * under the same key that is equal to the fresh one (`isEqualNode`: same tags, attributes and
 * text), the page's element stays, with its state; elements already in place are not moved.
 */
export function keepChildren(parent: Element, fresh: readonly KeyedElement[]): void {
  const shown = new Map<string, Element>();
  for (const child of parent.children) {
    const key = keyOf.get(child);
    if (key !== undefined && !shown.has(key)) shown.set(key, child);
  }
  const nodes = fresh.map(({ key, element }) => {
    const old = shown.get(key);
    shown.delete(key);
    const node = old !== undefined && old.isEqualNode(element) ? old : element;
    keyOf.set(node, key);
    return node;
  });
  const wanted = new Set<Element>(nodes);
  // What is no longer wanted goes from where it stands, so the elements after it stay put (a
  // changed message is replaced without moving every later one). Returns the first wanted one.
  const dropUnwanted = (from: Element | null): Element | null => {
    let at = from;
    while (at !== null && !wanted.has(at)) {
      const next: Element | null = at.nextElementSibling;
      at.remove();
      at = next;
    }
    return at;
  };
  let at: Element | null = parent.firstElementChild;
  for (const node of nodes) {
    at = dropUnwanted(at);
    if (node === at) at = at.nextElementSibling;
    else parent.insertBefore(node, at);
  }
  // Each wanted element was placed before `at`: what remains from it on is unwanted.
  dropUnwanted(at);
}
