"""The load benchmark of issue 12: idp against node-oidc-provider (see bench/README.md)."""
