// Sign-in for the map: who is signed in (GET /api/auth/me), password sign-in into httpOnly
// session cookies (POST /api/auth/session), single sign-on (GET /api/auth/sso/login, when
// /api/config names it), sign-out, and renewing the short-lived session cookie in time.
//
// What a user may see is the service's decision: after signing in or out the page reloads, so
// the catalog, the style and the tiles come again with the new credentials. Nothing here knows
// which role reads which layer.

import { api } from './api.js';
import { onLangChange, t } from './i18n.js';
import { h, setChildren } from './ui.js';
import { writeViewState } from './url-state.js';

const LANDING_KEY = 'ecomap.landOnJurisdiction';
const ANONYMOUS = { kind: 'anonymous', name: null, role: null, chief_id: null };

/**
 * The session the page starts with. A browser whose short-lived session cookie has lapsed, but
 * whose sign-in session lives on, is renewed first (so the first catalog and style requests
 * already carry it).
 */
export async function loadSession() {
  let me = ANONYMOUS;
  try {
    me = await api.me();
  } catch (err) {
    if (err.status !== 401) return { me: ANONYMOUS, renewIn: null };
  }
  if (me.kind !== 'anonymous' || !api.hasSessionCookie()) return { me, renewIn: me.kind === 'user' ? 60 : null };
  try {
    const renewed = await api.refreshSession();
    return { me: await api.me(), renewIn: renewed.expires_in };
  } catch {
    return { me: ANONYMOUS, renewIn: null }; // signed out elsewhere, or the session ended
  }
}

/** Keeps the session cookie fresh while the page is open (renewed a minute before it lapses). */
function keepRenewed(seconds) {
  if (!seconds) return;
  setTimeout(async () => {
    try {
      const renewed = await api.refreshSession();
      keepRenewed(renewed.expires_in);
    } catch {
      // The session ended (signed out elsewhere, account disabled): the next reload is anonymous.
    }
  }, Math.max(30, seconds - 60) * 1000);
}

/** Whether this page load follows a sign-in that asked to land on the chief's jurisdiction. */
export function takeLandingRequest() {
  const wanted = sessionStorage.getItem(LANDING_KEY) === '1';
  sessionStorage.removeItem(LANDING_KEY);
  return wanted;
}

function roleLabel(role) {
  return role ? t(`role_${role}`) : '';
}

/**
 * The header's account button and its panel. `session` is what loadSession gave, `ssoLogin` the
 * relative single sign-on URL of /api/config (null: no SSO), `onMyJurisdiction` opens the
 * chief's own jurisdiction.
 */
export function createAuthControl({ button, panel, session, ssoLogin, onMyJurisdiction }) {
  const me = session.me;
  const signedIn = me.kind === 'user';
  let error = null;
  let busy = false;
  keepRenewed(signedIn ? session.renewIn : null);

  const setOpen = (open) => {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) panel.querySelector('input, button, a')?.focus();
  };
  const close = () => setOpen(false);

  async function signIn(event) {
    event.preventDefault();
    const form = event.target;
    busy = true;
    error = null;
    render();
    try {
      const result = await api.signIn(form.elements.username.value, form.elements.password.value);
      if (result.role === 'chief') sessionStorage.setItem(LANDING_KEY, '1');
      window.location.reload();
    } catch (err) {
      busy = false;
      error = err.status === 401 ? t('signInWrong') : t('signInFailed', { detail: err.message });
      render();
      panel.querySelector('#signin-password')?.focus();
    }
  }

  async function signOut() {
    try {
      await api.signOut();
    } catch {
      // Already ended (expired or signed out elsewhere): reloading shows the map anonymously.
    }
    writeViewState({ chief: null }); // the chief view was the signed-in user's
    window.location.reload();
  }

  function ssoButton() {
    if (!ssoLogin) return null;
    const next = encodeURIComponent(window.location.pathname + window.location.hash);
    return h(
      'a',
      {
        class: 'btn sso-btn',
        id: 'signin-sso',
        href: `${ssoLogin}?next=${next}`,
        // A chief lands on their jurisdiction after the provider sends them back.
        onclick: () => sessionStorage.setItem(LANDING_KEY, '1'),
      },
      t('signInSso'),
    );
  }

  function renderAnonymous() {
    return [
      h('h2', { class: 'account-title' }, t('signInTitle')),
      h(
        'form',
        { class: 'signin-form', id: 'signin-form', onsubmit: signIn },
        h('label', { for: 'signin-username' }, t('signInUser')),
        h('input', { id: 'signin-username', name: 'username', autocomplete: 'username', required: true }),
        h('label', { for: 'signin-password' }, t('signInPassword')),
        h('input', {
          id: 'signin-password',
          name: 'password',
          type: 'password',
          autocomplete: 'current-password',
          required: true,
        }),
        error && h('p', { class: 'notice notice-error', role: 'alert', id: 'signin-error' }, error),
        h('button', { type: 'submit', class: 'btn primary', disabled: busy }, busy ? t('signingIn') : t('signIn')),
      ),
      ssoLogin && h('p', { class: 'account-or' }, t('signInOr')),
      ssoButton(),
    ];
  }

  function renderSignedIn() {
    return [
      h('h2', { class: 'account-title' }, t('signedInAs', { name: me.name })),
      h(
        'dl',
        { class: 'account-facts' },
        h('dt', {}, t('accountRole')),
        h('dd', { id: 'account-role', 'data-role': me.role }, roleLabel(me.role)),
      ),
      me.chief_id != null &&
        h(
          'button',
          {
            type: 'button',
            class: 'btn',
            id: 'my-jurisdiction',
            onclick: () => {
              close();
              onMyJurisdiction(me.chief_id);
            },
          },
          t('myJurisdiction'),
        ),
      h('button', { type: 'button', class: 'btn', id: 'signout', onclick: signOut }, t('signOut')),
    ];
  }

  function render() {
    const label = signedIn ? `${me.name} · ${roleLabel(me.role)}` : t('signIn');
    button.querySelector('.account-label').textContent = label;
    button.setAttribute('aria-label', signedIn ? t('accountOf', { name: me.name, role: roleLabel(me.role) }) : t('signIn'));
    button.dataset.state = signedIn ? 'signed-in' : 'anonymous';
    setChildren(panel, signedIn ? renderSignedIn() : renderAnonymous());
  }

  button.addEventListener('click', () => setOpen(panel.hidden));
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      close();
      button.focus();
    }
  });
  document.addEventListener('click', (event) => {
    if (!panel.hidden && !panel.contains(event.target) && !button.contains(event.target)) close();
  });
  onLangChange(render);
  render();
  return { me, close };
}
