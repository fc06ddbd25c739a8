// The API client: the token lives in sessionStorage only and travels as a bearer header.
const TOKEN_KEY = 'otel-redis.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function query(params) {
  const out = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') out.set(name, String(value));
  }
  const text = out.toString();
  return text ? `?${text}` : '';
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token.get() || ''}`, Accept: 'application/json', ...extra };
}

async function failure(response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    if (body && body.detail) detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON */ }
  if (response.status === 401) return new ApiError(401, `The server rejected the token (${detail}).`);
  return new ApiError(response.status, `${response.status}: ${detail}`);
}

/** GET a JSON endpoint of this origin. */
export async function get(path, params) {
  const response = await fetch(path + query(params), { headers: headers(), cache: 'no-store' });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/**
 * Follow GET /logs/stream: calls onRecord(record) per event and onPosition(id) with each event id.
 * Resolves when the stream ends; rejects on errors. EventSource cannot send a bearer header, so this
 * reads the text/event-stream body with fetch.
 */
export async function follow(params, lastEventId, { onRecord, onPosition, signal }) {
  const extra = { Accept: 'text/event-stream' };
  if (lastEventId) extra['Last-Event-ID'] = lastEventId;
  const response = await fetch('/logs/stream' + query(params), { headers: headers(extra), signal, cache: 'no-store' });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let id = null;
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (id) onPosition(id);
      if (data.length) onRecord(JSON.parse(data.join('\n')));
    }
  }
}
