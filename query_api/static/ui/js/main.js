// The console's entry point: login, navigation and the view router.
import { ApiError, get, token } from './api.js';
import { alertsView, oauthView } from './activity.js';
import { dashboardView } from './dashboard.js';
import { detailView } from './detail.js';
import { errorsView } from './errors.js';
import { current } from './route.js';
import { tailView } from './tail.js';
import { traceView } from './trace.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const login = document.getElementById('login');
const loginError = document.getElementById('login-error');
let stop = null;

function signedIn(yes) {
  nav.hidden = !yes;
  login.hidden = yes;
  view.hidden = !yes;
}

function render() {
  if (stop) { stop(); stop = null; }
  if (!token.get()) { signedIn(false); return; }
  signedIn(true);
  const { view: name, arg, params } = current();
  for (const link of nav.querySelectorAll('a')) link.classList.toggle('active', link.dataset.view === name);
  document.title = `otel-redis · ${name}`;
  if (name === 'record' && arg) detailView(view, arg);
  else if (name === 'trace' && arg) traceView(view, arg);
  else if (name === 'dashboard') dashboardView(view, params);
  else if (name === 'errors') errorsView(view, params);
  else if (name === 'oauth') oauthView(view, params);
  else if (name === 'alerts') alertsView(view);
  else stop = tailView(view, params);
}

login.addEventListener('submit', async (event) => {
  event.preventDefault();
  const value = document.getElementById('token').value.trim();
  loginError.textContent = '';
  token.set(value);
  try {
    await get('/logs', { limit: 1, hours: 1 });
  } catch (exc) {
    token.clear();
    loginError.textContent = exc instanceof ApiError && exc.status === 401
      ? 'Wrong token: the server rejected it. Check OTEL_REDIS_API_TOKENS or the generated api-token file.'
      : `Could not sign in: ${exc.message}`;
    return;
  }
  document.getElementById('token').value = '';
  render();
});

document.getElementById('logout').addEventListener('click', () => { token.clear(); render(); });
window.addEventListener('hashchange', render);
render();
