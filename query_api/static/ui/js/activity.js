// OAuth flows (GET /logs/oauth/flows) and alerts (GET /logs/alerts): the stored data of those endpoints.
import { get } from './api.js';
import { el, fmtTime, show, table } from './dom.js';
import { recordRow, remember } from './records.js';
import { setParams } from './route.js';

export async function oauthView(root, params) {
  const client = el('input', { name: 'client_id', type: 'search', value: params.client_id || '' });
  const user = el('input', { name: 'username', type: 'search', value: params.username || '' });
  const form = el('form', { class: 'filters' }, el('label', {}, 'Client id', client), el('label', {}, 'Username', user),
    el('button', { type: 'submit' }, 'Show flows'));
  form.addEventListener('submit', (e) => { e.preventDefault(); setParams('oauth', { client_id: client.value, username: user.value }); });
  const out = el('div', { id: 'flows' });
  show(root, form, out);
  if (!params.client_id && !params.username) { show(out, el('p', { class: 'muted' }, 'Give a client id or a username.')); return; }
  try {
    const body = await get('/logs/oauth/flows', { client_id: params.client_id, username: params.username, limit: 200 });
    show(out, el('p', { class: 'muted' }, `${body.count} flows`), body.flows.map((f) => {
      f.records.forEach(remember);
      return el('div', { class: 'panel' },
        el('h2', {}, `session ${f.session_id || '–'}`, ' ', el('span', { class: 'muted' }, `${fmtTime(f.started)} → ${fmtTime(f.ended)}`)),
        el('p', {}, `clients: ${f.client_ids.join(', ')} · users: ${f.users.join(', ')} · events: ${f.event_types.join(', ')}`),
        el('div', { class: 'records' }, f.records.map((r) => recordRow(r))));
    }));
  } catch (exc) {
    show(out, el('p', { class: 'error', role: 'alert' }, exc.message));
  }
}

export async function alertsView(root) {
  show(root, el('p', { class: 'muted' }, 'loading…'));
  try {
    const body = await get('/logs/alerts', { limit: 200 });
    show(root,
      el('h2', {}, 'Firing now'),
      body.active.length ? table([['Rule'], ['Scope'], ['Since'], ['Message']], body.active.map((a) => [a.rule, a.scope, fmtTime(a.since), a.message]))
        : el('p', { class: 'muted' }, 'nothing is firing'),
      el('h2', {}, 'Events'),
      body.events.length ? table([['Time'], ['Type'], ['Rule'], ['Message']], body.events.map((e) => [fmtTime(e.time || e.timestamp), e.type || e.kind || '', e.rule || '', e.message || JSON.stringify(e)]))
        : el('p', { class: 'muted' }, 'no alert events'));
  } catch (exc) {
    show(root, el('p', { class: 'error', role: 'alert' }, exc.message));
  }
}
