"""Host checks shared by configuration and client registration."""

import ipaddress


def is_loopback(host: str) -> bool:
    """localhost or a loopback address (RFC 8252 §7.3: plain http is tolerable only there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
