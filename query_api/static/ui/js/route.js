// The page URL holds the view and its filters (never the token): #/<view>[/<id>]?<filters>.
export function current() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?', 2);
  const [view, ...rest] = path.split('/');
  return { view: view || 'tail', arg: rest.length ? decodeURIComponent(rest.join('/')) : null, params: Object.fromEntries(new URLSearchParams(search)) };
}

export function href(view, params = {}, arg = null) {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  return `#/${view}${arg !== null ? `/${encodeURIComponent(arg)}` : ''}${search ? `?${search}` : ''}`;
}

/** Go to ``view`` with ``params`` (a new history entry, so Back returns to the previous filters). */
export function setParams(view, params, arg = null) {
  location.hash = href(view, params, arg);
}
