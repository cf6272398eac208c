// node-oidc-provider configured like idp: the other side of `make bench-load` (bench/README.md).
//
// Usage: node bench/node/server.mjs --port 5601
//   environment: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI (the one client),
//                BENCH_LOGIN, BENCH_PASSWORD (the one account that can sign in).
// Prints one line "ready <issuer>" on stdout once it listens on 127.0.0.1. Stops on SIGTERM.
//
// What matches idp: one confidential client (client_secret_basic) allowed the authorization code
// and client_credentials grants; opaque access tokens; introspection; UserInfo; RS256 and ES256
// signing keys; PKCE S256; a first-party client that gets no consent screen (idp's "trusted" client);
// access tokens that live 3600 s (the bench sets idp's [oauth] access_token_ttl to the same).
// What differs, on purpose: the provider's own in-memory store (an LRU of ~1000 entries), and a
// sign-in that compares the password in constant time without a password hash (idp pays bcrypt).
import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const client = {
  client_id: env('BENCH_CLIENT_ID'),
  client_secret: env('BENCH_CLIENT_SECRET'),
  redirect_uris: [env('BENCH_REDIRECT_URI')],
  grant_types: ['authorization_code', 'client_credentials'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'openid profile phone',
};
const account = { login: env('BENCH_LOGIN'), password: env('BENCH_PASSWORD'), sub: crypto.randomUUID() };

function signingKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, alg: 'RS256', use: 'sig', kid: 'rs256' }, { ...ec, alg: 'ES256', use: 'sig', kid: 'es256' }];
}

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: signingKeys() },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'phone'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'family_name', 'given_name', 'locale', 'updated_at'],
    phone: ['phone_number', 'phone_number_verified'],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    // idp has no resource indicators: tokens without an audience, usable at UserInfo.
    resourceIndicators: { enabled: false },
  },
  ttl: { AccessToken: 3600, ClientCredentials: 3600, AuthorizationCode: 60, IdToken: 3600 },
  async findAccount(ctx, sub) {
    if (sub !== account.sub) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: 'Рахимов Алишер',
          family_name: 'Рахимов',
          given_name: 'Алишер',
          locale: 'ru',
          updated_at: 1700000000,
          phone_number: '+79161234567',
          phone_number_verified: true,
        };
      },
    };
  },
  // A first-party client gets its grant without a consent screen (the pattern of the provider's docs).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(client.scope);
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return `<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Вход</title></head><body>
<form method="post" action="/interaction/${escape(uid)}/login">
${error ? `<p>${escape(error)}</p>` : ''}
<label>Логин <input name="login" autocomplete="username"></label>
<label>Пароль <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Войти</button></form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function sameSecret(a, b) {
  const x = crypto.createHash('sha256').update(String(a)).digest();
  const y = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(x, y);
}

// The sign-in page of the interaction: GET shows the form, POST checks it and finishes the login.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid || details.prompt.name !== 'login') {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('unexpected interaction');
    return;
  }
  if (req.method === 'GET' && !action) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid));
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const ok = sameSecret(form.get('login'), account.login) & sameSecret(form.get('password'), account.password);
    if (!ok) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid, 'Неверный логин или пароль.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(405).end();
}

const callback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/;

const server = http.createServer((req, res) => {
  const match = INTERACTION.exec(new URL(req.url, issuer).pathname);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((error) => {
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(String(error.message));
  });
});
server.keepAliveTimeout = 65000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
