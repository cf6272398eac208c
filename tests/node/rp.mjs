// A relying party on panva's openid-client (tests/oauth/test_openid_client.py drives it): discovery,
// private_key_jwt, PAR, PKCE, DPoP-bound tokens, UserInfo, refresh and introspection against a live idp.
//
// Argument: a JSON object {issuer, client_id, private_jwk, redirect_uri, scope}, and optionally: extra (more
// authorization request parameters), par (false: a plain authorization URL, with dpop_jkt, RFC 9449 §10),
// token_dpop ("other": redeem the code with another DPoP key than the one the request was bound to; the
// line printed then is the error). It prints one JSON line
// {"authorization_url": ...}, reads the callback URL (where the browser was sent) from stdin, finishes
// the flow and prints one JSON line with what it got. Any failure: a JSON line {"error": ...}, exit 1.
import * as readline from 'node:readline'
import * as client from 'openid-client'

function line(value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

async function nextLine() {
  const rl = readline.createInterface({ input: process.stdin })
  for await (const text of rl) {
    rl.close()
    return text.trim()
  }
  throw new Error('no callback URL on stdin')
}

async function main() {
  const args = JSON.parse(process.argv[2])
  const privateKey = await crypto.subtle.importKey(
    'jwk',
    args.private_jwk,
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  )
  const config = await client.discovery(
    new URL(args.issuer),
    args.client_id,
    { token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt({ key: privateKey, kid: args.private_jwk.kid }),
    // The test server is http on 127.0.0.1; openid-client insists on https otherwise.
    { execute: [client.allowInsecureRequests] },
  )
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
  const verifier = client.randomPKCECodeVerifier()
  const state = (args.extra && args.extra.state) || client.randomState()
  const nonce = client.randomNonce()
  const parameters = {
    redirect_uri: args.redirect_uri,
    scope: args.scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(args.extra || {}),
  }
  let url
  if (args.par === false) {
    // RFC 9449 §10: without PAR, the code is bound by the thumbprint of the key, sent as dpop_jkt.
    url = client.buildAuthorizationUrl(config, { ...parameters, dpop_jkt: await dpop.calculateThumbprint() })
  } else {
    // RFC 9449 §10.1: openid-client signs the push with the DPoP key, which binds the code to it.
    url = await client.buildAuthorizationUrlWithPAR(config, parameters, { DPoP: dpop })
  }
  line({ authorization_url: url.href, par_endpoint: config.serverMetadata().pushed_authorization_request_endpoint })
  const callback = await nextLine()
  const tokenDpop =
    args.token_dpop === 'other' ? client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) : dpop
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(callback),
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
    undefined,
    { DPoP: tokenDpop },
  )
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: dpop })
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop })
  const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub, { DPoP: dpop })
  const introspection = await client.tokenIntrospection(config, refreshed.access_token)
  line({
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    sub: claims.sub,
    userinfo,
    refreshed_token_type: refreshed.token_type,
    refreshed_access_token: refreshed.access_token,
    userinfo_after_refresh: again,
    introspection,
  })
}

main().catch((error) => {
  line({ error: String(error && error.message ? error.message : error), code: error && error.code, oauth_error: error && error.error, cause: error && error.cause ? String(error.cause.error || error.cause) : undefined })
  process.exit(1)
})
