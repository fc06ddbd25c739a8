// One line per record, coloured as the CLI colours them (otel_redis/render.py), and the live filters.
import { el, fmtTime } from './dom.js';

/** Records seen in this tab, by id (the detail view opens them without another request). */
export const seen = new Map();
const SEEN_MAX = 5000;

export function remember(record) {
  seen.set(record.id, record);
  if (seen.size > SEEN_MAX) seen.delete(seen.keys().next().value);
}

export function levelOf(record) {
  if (record.kind !== 'request') return record.level;
  const s = record.status_code;
  return s >= 500 ? 'ERROR' : s >= 400 ? 'WARNING' : 'INFO';
}

export function bodyText(body) {
  if (body === null || body === undefined) return '';
  return typeof body === 'string' ? body : JSON.stringify(body);
}

function requestParts(r) {
  const parts = [el('span', { class: 'comp' }, r.method || ''), ' ', r.path || ''];
  if (r.query) parts.push(el('span', { class: 'muted' }, `?${r.query}`));
  parts.push(' ', el('span', { class: `st-${String(r.status_code)[0]}` }, String(r.status_code)));
  if (r.response_time_ms !== undefined && r.response_time_ms !== null) {
    parts.push(' ', el('span', { class: 'rt' }, `${Number(r.response_time_ms).toFixed(1)}ms`));
  }
  if (r.client_ip) parts.push(' ', el('span', { class: 'ip' }, `client=${r.client_ip}`));
  if (r.proxy_hostname) parts.push(' ', el('span', { class: 'muted' }, `host=${r.proxy_hostname}`));
  if (r.user_id) parts.push(' ', el('span', { class: 'user' }, `user=${r.user_id}`));
  if (r.error) parts.push(' ', el('span', { class: 'lvl-ERROR' }, `error=${r.error}`));
  return parts;
}

function logParts(r) {
  const parts = [];
  if (r.component) parts.push(el('span', { class: 'comp' }, `[${r.component}]`), ' ');
  if (r.event) parts.push(el('span', { class: 'rt' }, `<${r.event}>`), ' ');
  parts.push(bodyText(r.body));
  if (r.trace_id) parts.push(' ', el('span', { class: 'muted' }, `trace=${r.trace_id}`));
  return parts;
}

/** A clickable row; ``prefix`` (a node or text) goes before the time, e.g. a trace offset. */
export function recordRow(record, prefix = null) {
  const level = levelOf(record);
  return el('div', {
    class: 'record', 'data-id': record.id, 'data-kind': record.kind, role: 'link', tabindex: '0',
    onclick: () => { location.hash = `#/record/${encodeURIComponent(record.id)}`; },
  },
  prefix,
  el('span', { class: 'time' }, fmtTime(record.timestamp)),
  el('span', { class: `lvl lvl-${level}` }, level),
  el('span', { class: 'msg' }, record.kind === 'request' ? requestParts(record) : logParts(record)));
}

function wildcard(pattern) {
  const escaped = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(escaped.join('.*'));
}

/** The filters the server cannot apply to the stream, applied to each record (same meaning as /logs/search). */
export function matcher(f) {
  const path = f.path ? wildcard(f.path) : null;
  const text = f.text ? f.text.toLowerCase() : null;
  return (r) => {
    if (f.source === 'logs' && r.kind !== 'log') return false;
    if (f.source === 'requests' && r.kind !== 'request') return false;
    if (f.level && levelOf(r) !== f.level) return false;
    if (f.hostname && r.proxy_hostname !== f.hostname && (r.attributes || {})['proxy_hostname'] !== f.hostname) return false;
    if (f.component && r.component !== f.component) return false;
    if (f.ip && r.client_ip !== f.ip && (r.attributes || {}).client_ip !== f.ip) return false;
    if (f.status && String(r.status_code) !== String(f.status)) return false;
    if (f.user && r.user_id !== f.user && (r.attributes || {}).user_id !== f.user) return false;
    if (f.trace && (r.trace_id || '').toLowerCase() !== f.trace.toLowerCase()) return false;
    if (path && !(path.test(r.path || '') || path.test(r.route || ''))) return false;
    if (text) {
      const hay = [bodyText(r.body), r.path, r.error, JSON.stringify(r.attributes || {})].join('\n').toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  };
}
