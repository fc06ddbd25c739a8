// Live tail: the newest records, then every new one over GET /logs/stream (resumed with Last-Event-ID).
import { follow, get } from './api.js';
import { el, show } from './dom.js';
import { matcher, recordRow, remember } from './records.js';
import { setParams } from './route.js';

export const FILTERS = [
  ['level', 'Level', ['', 'TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']],
  ['source', 'Source', ['', 'logs', 'requests']],
  ['component', 'Component'], ['hostname', 'Hostname'], ['ip', 'Client IP'], ['status', 'Status'],
  ['path', 'Path'], ['user', 'User'], ['trace', 'Trace id'], ['text', 'Text'],
];
const MAX_ROWS = 1000;
const BACKLOG = 200;

function filterForm(filters, onChange) {
  const form = el('form', { class: 'filters', id: 'filters' });
  for (const [name, label, options] of FILTERS) {
    const input = options
      ? el('select', { name }, options.map((o) => el('option', { value: o }, o || 'any')))
      : el('input', { name, type: 'search', autocomplete: 'off' });
    input.value = filters[name] || '';
    form.append(el('label', {}, label, input));
  }
  form.append(el('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    onChange(Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== '')));
  });
  // a select applies at once; text fields apply on Enter or Apply (re-rendering on their change event
  // would drop what is typed into the next field and lose its focus)
  form.addEventListener('change', (event) => { if (event.target.tagName === 'SELECT') form.requestSubmit(); });
  return form;
}

function searchParams(f) {
  return {
    limit: BACKLOG, level: f.level, hostname: f.hostname, component: f.component, ip: f.ip,
    status: f.status, path: f.path, user: f.user, trace_id: f.trace, text: f.text,
    kind: f.source === 'logs' ? 'log' : f.source === 'requests' ? 'request' : undefined,
  };
}

/** Render the tail into ``root``; returns a function that stops it. */
export function tailView(root, filters) {
  const list = el('div', { class: 'records', id: 'records' });
  const status = el('span', { class: 'muted', id: 'tail-status' }, 'connecting…');
  const pause = el('button', { type: 'button', id: 'pause' }, 'Pause');
  const error = el('p', { class: 'error', role: 'alert' });
  const controller = new AbortController();
  const matches = matcher(filters);
  const shown = new Set();
  let held = [];
  let paused = false;
  let position = null;

  function add(record) {
    if (shown.has(record.id) || !matches(record)) return;
    shown.add(record.id);
    remember(record);
    if (paused) { held.push(record); status.textContent = `paused, ${held.length} new`; return; }
    list.append(recordRow(record));
    while (list.childElementCount > MAX_ROWS) list.firstElementChild.remove();
    if (window.scrollY + window.innerHeight >= document.body.scrollHeight - 80) window.scrollTo(0, document.body.scrollHeight);
  }
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) { const queued = held; held = []; queued.forEach((r) => { shown.delete(r.id); add(r); }); status.textContent = 'live'; }
    else status.textContent = 'paused';
  });
  show(root,
    filterForm(filters, (next) => setParams('tail', next)),
    el('div', { class: 'toolbar' }, pause, status), error, list);

  const server = { level: filters.level, hostname: filters.hostname };
  async function connect() {
    while (!controller.signal.aborted) {
      try {
        await follow(server, position, {
          signal: controller.signal,
          onPosition: (id) => {
            const first = position === null;
            position = id;
            if (first) { status.textContent = 'live'; loadBacklog(); }
          },
          onRecord: add,
        });
      } catch (exc) {
        if (controller.signal.aborted) return;
        if (exc.status === 401) { error.textContent = exc.message; return; }
        status.textContent = 'reconnecting…';
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  async function loadBacklog() {
    try {
      const page = await get('/logs/search', searchParams(filters));
      const older = page.records.filter((r) => !shown.has(r.id) && matches(r));
      older.forEach(remember);
      older.forEach((r) => shown.add(r.id));
      list.prepend(...older.map((r) => recordRow(r)));
    } catch (exc) {
      error.textContent = exc.message;
    }
  }
  connect();
  return () => controller.abort();
}
