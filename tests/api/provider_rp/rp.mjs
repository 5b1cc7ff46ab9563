// A relying party built on openid-client (panva; OpenID Certified), for teamgate's OpenID
// provider tests. It is a small web application, as Grafana or any OIDC app would be:
//
//   GET /login[?prompt=..&max_age=..]  -> 302 to teamgate's authorization endpoint (PKCE S256,
//                                         state, nonce), remembered under the rp cookie
//   GET /callback                      -> the library redeems the code and validates the ID
//                                         token (signature from the JWKS, iss, aud, nonce,
//                                         state, RFC 9207 iss), then reads userinfo; the page
//                                         shows <pre id="result">JSON</pre> (or id="error")
//   GET /result                        -> that JSON
//   GET /refresh                       -> refresh_token grant; JSON
//   GET /userinfo                      -> userinfo with the current access token; JSON
//   GET /logout                        -> 302 to teamgate's end_session_endpoint with
//                                         id_token_hint, post_logout_redirect_uri and state
//   GET /logged-out                    -> <p id="logged-out">state</p>
//
// Usage: node rp.mjs '{"issuer": "...", "client_id": "...", "client_secret": "..." | null,
//   "auth": "basic"|"post"|"none", "id_token_alg": "RS256"|"ES256", "scope": "..."}'
// Prints {"listening": PORT} on stdout once it listens on 127.0.0.1.

import http from 'node:http';
import crypto from 'node:crypto';
import * as client from 'openid-client';

const args = JSON.parse(process.argv[2]);
const auth = {
  basic: () => client.ClientSecretBasic(args.client_secret),
  post: () => client.ClientSecretPost(args.client_secret),
  none: () => client.None(),
}[args.auth ?? 'basic']();
const metadata = { id_token_signed_response_alg: args.id_token_alg ?? 'RS256' };
if (args.client_secret) metadata.client_secret = args.client_secret;

// Discovery on first use, so that the RP can listen (and tell its port, which teamgate's config
// registers) before teamgate starts. Plain HTTP on loopback: the library refuses http unless told.
let discovered;
function configuration() {
  discovered ??= client.discovery(new URL(args.issuer), args.client_id, metadata, auth, {
    execute: [client.allowInsecureRequests],
  });
  return discovered;
}

const sessions = new Map();
let base = '';

function session(req, res) {
  const cookie = (req.headers.cookie ?? '').split('; ').find((c) => c.startsWith('rp='));
  let id = cookie?.slice(3);
  if (!id || !sessions.has(id)) {
    id = crypto.randomUUID();
    sessions.set(id, {});
    res.setHeader('set-cookie', `rp=${id}; Path=/; HttpOnly; SameSite=Lax`);
  }
  return sessions.get(id);
}

function escape(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function page(res, status, id, value) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>rp</title><pre id="${id}">${escape(JSON.stringify(value))}</pre>`);
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function failure(e) {
  return { error: e.error ?? e.code ?? e.name, description: e.error_description ?? e.message };
}

async function handle(req, res) {
  const config = await configuration();
  const url = new URL(req.url, base);
  const s = session(req, res);
  switch (url.pathname) {
    case '/login': {
      s.verifier = client.randomPKCECodeVerifier();
      s.state = client.randomState();
      s.nonce = client.randomNonce();
      const params = {
        redirect_uri: `${base}/callback`,
        scope: args.scope ?? 'openid email profile',
        code_challenge: await client.calculatePKCECodeChallenge(s.verifier),
        code_challenge_method: 'S256',
        state: s.state,
        nonce: s.nonce,
      };
      for (const k of ['prompt', 'max_age']) {
        if (url.searchParams.has(k)) params[k] = url.searchParams.get(k);
      }
      s.maxAge = url.searchParams.get('max_age');
      const target = client.buildAuthorizationUrl(config, params);
      res.writeHead(302, { location: target.href });
      return res.end();
    }
    case '/callback': {
      try {
        const tokens = await client.authorizationCodeGrant(config, url, {
          pkceCodeVerifier: s.verifier,
          expectedState: s.state,
          expectedNonce: s.nonce,
          idTokenExpected: true,
          maxAge: s.maxAge ? Number(s.maxAge) : undefined,
        });
        s.tokens = tokens;
        const claims = tokens.claims();
        const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
        s.result = {
          claims,
          userinfo,
          scope: tokens.scope,
          has_refresh_token: typeof tokens.refresh_token === 'string',
          id_token_alg: JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg,
        };
        return page(res, 200, 'result', s.result);
      } catch (e) {
        s.result = failure(e);
        return page(res, 400, 'error', s.result);
      }
    }
    case '/result':
      return json(res, 200, s.result ?? null);
    case '/refresh': {
      try {
        const tokens = await client.refreshTokenGrant(config, s.tokens.refresh_token);
        const previous = s.tokens.refresh_token;
        s.tokens = tokens;
        return json(res, 200, {
          claims: tokens.claims(),
          rotated: tokens.refresh_token !== previous,
          access_token_changed: true,
        });
      } catch (e) {
        return json(res, 400, failure(e));
      }
    }
    case '/userinfo': {
      try {
        const claims = s.tokens.claims();
        return json(res, 200, await client.fetchUserInfo(config, s.tokens.access_token, claims.sub));
      } catch (e) {
        return json(res, 400, failure(e));
      }
    }
    case '/logout': {
      const target = client.buildEndSessionUrl(config, {
        id_token_hint: s.tokens.id_token,
        post_logout_redirect_uri: `${base}/logged-out`,
        state: 'bye',
      });
      res.writeHead(302, { location: target.href });
      return res.end();
    }
    case '/logged-out':
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(`<!doctype html><p id="logged-out">${escape(url.searchParams.get('state') ?? '')}</p>`);
    default:
      res.writeHead(404);
      return res.end();
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => json(res, 500, failure(e)));
});
server.listen(args.port ?? 0, '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  console.log(JSON.stringify({ listening: server.address().port }));
});
