"""``idp clients``: relying parties (OAuth clients) — create, list, show, update, delete. The rules are
``services.clients.check``'s, as for the console and dynamic registration; the words are
``messages.cli_client_error``'s. Audited as the server's console."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from .. import messages
from ..errors import ClientDataError
from ..extensions import db
from ..models import OAuth2Client
from ..services import client_secrets
from ..services import clients as client_service
from ..services.clients import ClientInput
from ..services.keys import ALGORITHMS
from .common import cli_context
from .common import committed
from .common import emit
from .common import json_option
from .common import runtime
from .common import settings

clients_group = click.Group("clients", help="Relying parties (OAuth clients).")


def _protocol_options(create: bool):
    """The options of the protocol features (README "Connecting a relying party"), on create and update."""

    def decorate(command):
        flag_default = False if create else None
        options = [
            click.option(
                "--auth-method",
                type=click.Choice(list(client_service.CONFIDENTIAL_AUTH_METHODS)),
                help="Token endpoint authentication of a confidential client (default client_secret_basic).",
            ),
            click.option(
                "--jwks",
                "jwks_file",
                type=click.File("r", encoding="utf-8"),
                help="private_key_jwt: a file with the client's public JWK Set ('-' reads stdin).",
            ),
            click.option(
                "--jwks-uri", help='private_key_jwt: where the client publishes its JWK Set ("" removes).'
            ),
            click.option(
                "--access-token-format",
                type=click.Choice(list(client_service.ACCESS_TOKEN_FORMATS)),
                help="opaque (default) or jwt (RFC 9068).",
            ),
            click.option(
                "--resource",
                "resources",
                multiple=True,
                help="A resource indicator (RFC 8707) the client may ask tokens for; repeat for more.",
            ),
            click.option(
                "--require-par/--no-require-par",
                default=flag_default,
                help="Authorization requests only through /par (RFC 9126).",
            ),
            click.option(
                "--dpop-bound/--no-dpop-bound",
                default=flag_default,
                help="Access tokens only bound to a DPoP key (RFC 9449).",
            ),
        ]
        if not create:
            options.append(
                click.option("--no-resources", is_flag=True, help="Remove every resource indicator.")
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _apply_protocol_options(data: ClientInput, changes: dict) -> None:
    if changes.get("auth_method"):
        data.auth_method = changes["auth_method"]
    if changes.get("jwks_file") is not None:
        try:
            data.jwks = json.load(changes["jwks_file"])
        except ValueError as error:
            raise click.BadParameter("not a JSON document", param_hint="--jwks") from error
        data.jwks_uri = None
    if changes.get("jwks_uri") is not None:
        data.jwks_uri = changes["jwks_uri"].strip() or None
        if data.jwks_uri:
            data.jwks = None
    if changes.get("access_token_format"):
        data.access_token_format = changes["access_token_format"]
    if changes.get("resources") or changes.get("no_resources"):
        data.resources = list(changes.get("resources") or [])
    if changes.get("require_par") is not None:
        data.require_par = changes["require_par"]
    if changes.get("dpop_bound") is not None:
        data.dpop_bound = changes["dpop_bound"]


@clients_group.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--scope", default="openid profile phone patent offline_access", show_default=True)
@click.option("--public", is_flag=True, help="No secret; PKCE required (SPA or native app).")
@click.option("--trusted", is_flag=True, help="First-party: no consent screen.")
@click.option("--grant-type", "grant_types", multiple=True, help="Default: authorization_code refresh_token.")
@click.option("--id-token-alg", default="RS256", type=click.Choice(list(ALGORITHMS)), show_default=True)
@click.option("--backchannel-logout-uri", help="Where logout tokens are POSTed (OIDC Back-Channel Logout).")
@click.option("--frontchannel-logout-uri", help="Loaded in an iframe at logout (OIDC Front-Channel Logout).")
@click.option("--client-uri", help="The site's home page (RFC 7591 client_uri); the landing page links it.")
@click.option(
    "--subject-type",
    default="public",
    type=click.Choice(["public", "pairwise"]),
    show_default=True,
    help="pairwise: a sub of its own per sector (OIDC Core §8.1).",
)
@click.option("--sector-identifier-uri", help="JSON list of the redirect URIs; its host is the sector.")
@_protocol_options(create=True)
@json_option
@with_appcontext
def clients_create(
    name,
    redirect_uris,
    post_logout_redirect_uris,
    scope,
    public,
    trusted,
    grant_types,
    id_token_alg,
    backchannel_logout_uri,
    frontchannel_logout_uri,
    client_uri,
    subject_type,
    sector_identifier_uri,
    as_json,
    **protocol,
):
    """Register a relying party; prints client_id and client_secret once."""
    data = ClientInput(
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        scope=scope,
        public=public,
        trusted=trusted,
        id_token_alg=id_token_alg,
        backchannel_logout_uri=backchannel_logout_uri,
        frontchannel_logout_uri=frontchannel_logout_uri,
        client_uri=client_uri,
        subject_type=subject_type,
        sector_identifier_uri=sector_identifier_uri or None,
    )
    if grant_types:
        data.grant_types = list(grant_types)
    _apply_protocol_options(data, protocol)
    with committed(ClientDataError, messages.cli_client_error):
        client, secret = client_service.create(
            db.session,
            cli_context(),
            data,
            limits=settings().oauth,
            outbound_policy=runtime().outbound.policy,
            fetch=client_service.sector_fetch(runtime().outbound),
            sealing_key=client_secrets.sealing_key(settings().server.secret_key),
        )
    emit(as_json, client_json(client, secret), client_lines(client, secret))


def _find_client(client_id: str) -> OAuth2Client:
    client = client_service.find_client(db.session, client_id)
    if client is None:
        raise click.ClickException(f"no client with client_id {client_id}")
    return client


def _client_state(client: OAuth2Client) -> dict:
    """What `clients show` and `clients list` print: the registration without any secret."""
    return {
        "client_id": client.client_id,
        **client.client_metadata,
        "trusted": client.trusted,
        "enabled": client.enabled,
        "client_id_issued_at": client.client_id_issued_at,
    }


@clients_group.command("list")
@json_option
@with_appcontext
def clients_list(as_json):
    """Every relying party: client_id, type, state and name."""
    clients = list(reversed(client_service.all_clients(db.session)))
    lines = [
        f"{c.client_id} {'public' if c.is_public else 'confidential'} "
        f"{'enabled' if c.enabled else 'disabled'}{' trusted' if c.trusted else ''} {c.client_name}"
        for c in clients
    ]
    emit(as_json, [_client_state(client) for client in clients], lines)


@clients_group.command("show")
@click.argument("client_id")
@json_option
@with_appcontext
def clients_show(client_id, as_json):
    """One relying party's registration (the secret is never shown again)."""
    state = _client_state(_find_client(client_id))
    lines = [f"{key + ':':<38} {_plain(value)}" for key, value in state.items()]
    emit(as_json, state, lines)


def _plain(value) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value)) or "—"
    return "—" if value is None else str(value)


@clients_group.command("update")
@click.argument("client_id")
@click.option("--name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Replaces every redirect URI.")
@click.option(
    "--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True, help="Replaces them all."
)
@click.option("--no-post-logout-redirect-uris", is_flag=True, help="Remove every post-logout redirect URI.")
@click.option("--backchannel-logout-uri", help='"" removes it.')
@click.option("--frontchannel-logout-uri", help='"" removes it.')
@click.option("--client-uri", help='The site\'s home page (RFC 7591 client_uri); "" removes it.')
@click.option("--scope")
@click.option("--grant-type", "grant_types", multiple=True, help="Replaces the grant types.")
@click.option("--trusted/--untrusted", default=None, help="First-party (no consent screen) or not.")
@click.option("--id-token-alg", type=click.Choice(list(ALGORITHMS)))
@click.option("--subject-type", type=click.Choice(["public", "pairwise"]))
@click.option("--sector-identifier-uri", help='"" removes it.')
@click.option(
    "--access-token-ttl", type=int, help="Seconds, shorter than [oauth]'s; 0 removes the client's own."
)
@click.option("--id-token-ttl", type=int, help="Seconds, shorter than [oauth]'s; 0 removes the client's own.")
@click.option(
    "--refresh-token-ttl", type=int, help="Seconds, shorter than [oauth]'s; 0 removes the client's own."
)
@_protocol_options(create=False)
@json_option
@with_appcontext
def clients_update(client_id, as_json, **changes):
    """Change a relying party's registration, checked as the console checks it; what is not given stays."""
    client = _find_client(client_id)
    data = client_service.input_of(client)
    _apply_changes(data, changes)
    with committed(ClientDataError, messages.cli_client_error):
        client_service.update_client(
            db.session,
            cli_context(),
            client,
            data,
            limits=settings().oauth,
            outbound_policy=runtime().outbound.policy,
            fetch=client_service.sector_fetch(runtime().outbound),
        )
    emit(as_json, _client_state(client), [f"{client.client_id}: updated"])


def _apply_changes(data: ClientInput, changes: dict) -> None:
    if changes["name"] is not None:
        data.name = changes["name"]
    if changes["redirect_uris"]:
        data.redirect_uris = list(changes["redirect_uris"])
    if changes["post_logout_redirect_uris"] or changes["no_post_logout_redirect_uris"]:
        data.post_logout_redirect_uris = list(changes["post_logout_redirect_uris"])
    for uri in ("backchannel_logout_uri", "frontchannel_logout_uri", "client_uri"):
        if changes[uri] is not None:
            setattr(data, uri, changes[uri].strip() or None)
    if changes["scope"] is not None:
        data.scope = changes["scope"]
    if changes["grant_types"]:
        data.grant_types = list(changes["grant_types"])
    if changes["trusted"] is not None:
        data.trusted = changes["trusted"]
    if changes["id_token_alg"] is not None:
        data.id_token_alg = changes["id_token_alg"]
    if changes["subject_type"] is not None:
        data.subject_type = changes["subject_type"]
    if changes["sector_identifier_uri"] is not None:
        data.sector_identifier_uri = changes["sector_identifier_uri"].strip() or None
    for key in client_service.LIFETIMES:
        if changes[key] is not None:
            data.lifetimes[key] = changes[key] or None
    _apply_protocol_options(data, changes)


@clients_group.command("delete")
@click.argument("client_id")
@click.option("--reason", help="Why, for the audit log.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@with_appcontext
def clients_delete(client_id, reason, yes, as_json):
    """Delete a relying party with its codes, tokens and consents (they stop working at once)."""
    client = _find_client(client_id)
    if not yes:
        click.confirm(
            f"Delete {client.client_name} ({client.client_id}) and every token it holds?", abort=True
        )
    client_service.delete_client(db.session, cli_context(), client, reason=reason)
    db.session.commit()
    emit(as_json, {"deleted": client_id}, [f"{client_id} deleted"])


def client_json(client: OAuth2Client, secret: str | None) -> dict:
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "issuer": settings().server.issuer,
        **client.client_metadata,
        "trusted": client.trusted,
    }


def client_lines(client: OAuth2Client, secret: str | None) -> list[str]:
    lines = [f"client_id:     {client.client_id}"]
    if secret:
        lines.append(f"client_secret: {secret}   (shown once)")
    lines.append(f"issuer:        {settings().server.issuer}")
    return lines
