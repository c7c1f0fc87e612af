// A real OpenID Connect provider (the `oidc-provider` package) for the single sign-on tests.
//
//   node provider.js          (environment below; prints "listening <issuer>" when ready)
//
// OIDC_PORT            TCP port on 127.0.0.1 (required; the issuer is http://127.0.0.1:PORT)
// OIDC_CLIENT_ID       the one static client (default "ecomap")
// OIDC_CLIENT_SECRET   its secret (default "ecomap-test-secret")
// OIDC_REDIRECT_URIS   comma-separated redirect URIs the client may use (required)
// OIDC_USERS           JSON {login: {claims…}}: the accounts the login page accepts, each with the
//                      claims its ID token carries (e.g. {"river-chief": {"role": "chief",
//                      "chief_id": 3}}); default: USERS below
//
// Sign-in uses the package's development interactions: a login page (any password) and a
// consent page, plain HTML forms. The signing key is a fresh RSA key each start (JWKS at
// /jwks), so tokens of an earlier run never verify. Test use only: it listens on loopback.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const USERS = {
  'sso-planner': { role: 'planner', name: 'Planner via SSO' },
  'sso-analyst': { role: 'analyst', name: 'Analyst via SSO' },
  'sso-intern': { role: 'intern', name: 'A role EcoMap does not know' },
};

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.js: set ${name} (see the comment at the top of tests/oidc/provider.js)`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const users = process.env.OIDC_USERS ? JSON.parse(process.env.OIDC_USERS) : USERS;
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID || 'ecomap',
      client_secret: process.env.OIDC_CLIENT_SECRET || 'ecomap-test-secret',
      redirect_uris: required('OIDC_REDIRECT_URIS').split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [{ ...signingKey, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'role', 'chief_id'] },
  conformIdTokenClaims: false, // the profile claims (role included) go into the ID token
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(users, id)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, ...users[id] }) };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
