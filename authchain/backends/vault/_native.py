"""The vault source's requests on the running event loop: what ``aget`` uses instead of hvac.

hvac has no async client, and hvac/requests on a thread pool hold the GIL the
event loop needs for 1.2-1.6 ms of each request (benchmarks/RESULTS.md,
"Heartbeat"). The source's lookups are written once as the requests they make
(``source._reading``); here each request is a GET on the loop
(``authchain.backends._ahttp``), with hvac's own headers, and its answer is
handed back the way hvac's ``JSONAdapter`` would: a dict for a 200 with JSON,
the raw response otherwise, hvac's exception for a status of 400 or more. So
the source's decisions (mount probe, not-found shapes, access denied) and the
messages are the ones sync code gets.

What stays on threads (``asyncio.to_thread``): a login, a renewal and the
lookup-self that tells an expired token from a policy denial: rare, and hvac
does them. Where a proxy applies to the address (``HTTPS_PROXY`` and the like,
read as requests reads them) the source has no native path and the chain runs
``get`` on its pool, as for every other SDK.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

from authchain.backends import _ahttp
from authchain.backends._net import refuse_other_origin, timeout_within_deadline
from authchain.backends.vault._hvac import REDIRECT_ADVICE, import_hvac, rejection
from authchain.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from authchain.backends.vault.source import Request, VaultSource

__all__ = ["NativeVault", "for_source"]

logger = logging.getLogger("authchain.backends.vault.source")

MAX_CONNECTIONS = 8
"""Requests in flight at once per event loop, like the chain's ``async_workers`` default."""
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def for_source(source: VaultSource) -> NativeVault | None:
    """The native path for ``source`` as configured now; None where requests must make the calls.

    Raises:
        ConfigError: the source has no address yet (``VAULT_ADDR`` unset).
    """
    if not _ahttp.available():
        return None
    address = source.address()  # a ConfigError: decided once there is an address
    if urlsplit(address).scheme not in ("http", "https"):
        return None
    import requests.utils

    if requests.utils.get_environ_proxies(address):
        return None  # a proxy requests would use: requests makes the calls
    try:
        transport = _ahttp.Transport(
            address, ssl_context=_ssl_context(source, address), max_connections=MAX_CONNECTIONS
        )
    except ValueError:
        return None
    return NativeVault(source, transport)


def _ssl_context(source: VaultSource, address: str) -> ssl.SSLContext | None:
    """TLS as requests verifies it: ``verify`` off, ``ca_cert``, else ``REQUESTS_CA_BUNDLE`` /
    ``CURL_CA_BUNDLE``, else certifi's bundle (requests' default, not the system store)."""
    if urlsplit(address).scheme != "https":
        return None
    if not source.verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    bundle = str(source.ca_cert) if source.ca_cert else None
    if bundle is None:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle is None:
        import requests.utils

        bundle = requests.utils.DEFAULT_CA_BUNDLE_PATH  # certifi's, as requests uses it
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


class NativeVault:
    """One source's requests on event loops: logged in through the source, answered like hvac."""

    def __init__(self, source: VaultSource, transport: _ahttp.Transport) -> None:
        self.source = source
        self.transport = transport

    def close(self) -> None:
        self.transport.close()

    async def ask(self, request: Request, lease: _ahttp.Lease) -> Any:
        """``request`` logged in; a token the server rejects as expired gets one fresh login
        (``VaultSource._authorized`` for the event loop)."""
        hvac = import_hvac()
        source = self.source
        client, token = await self._session()
        try:
            try:
                return await self._get(request, token, lease)
            except hvac.exceptions.Forbidden as error:
                rejected = rejection(error)
                if rejected is None:
                    rejected = await asyncio.to_thread(source._lookup_refused, client)
                if not rejected:
                    raise
                logger.debug(
                    "%s: the server rejected the token (expired or revoked); logging in again", source.name
                )
                client, fresh = await self._session(stale=token)
                if fresh == token:  # a static token that nothing has replaced: no point asking again
                    raise BackendError(
                        f"{request.what}: the server rejected the token (expired or revoked)",
                        access_denied=True,
                    ) from None
                return await self._get(request, fresh, lease)
        except (hvac.exceptions.InvalidPath, hvac.exceptions.Forbidden, BackendError):
            raise
        except Exception as error:
            raise self._translate(error, request.what) from error

    async def _session(self, stale: str | None = None) -> tuple[Any, str | None]:
        """The source's session; a login or renewal that is due runs on a thread (hvac makes it)."""
        source = self.source
        with source._lock:
            ready = source._ready(stale)
        if ready is not None:
            return ready
        return await asyncio.to_thread(source._session, stale)

    async def _get(self, request: Request, token: str | None, lease: _ahttp.Lease) -> Any:
        source = self.source
        headers = [("X-Vault-Request", "true")]  # hvac's SSRF guard header
        if token:
            headers.append(("X-Vault-Token", token))
        if source.namespace:
            headers.append(("X-Vault-Namespace", source.namespace))
        path = request.path
        while "//" in path:  # as hvac: Vault reads a double slash as one
            path = path.replace("//", "/")
        if request.params:
            path = f"{path}?{urlencode(request.params)}"
        for _ in range(MAX_REDIRECTS + 1):
            timeout = timeout_within_deadline(source.timeout)
            response = await lease.request("GET", path, headers, timeout=timeout)
            if response.status not in REDIRECTS:
                return _as_hvac_answer(response, self.transport, path)
            path = self._redirected(response, path)
        raise BackendError(f"{request.what}: more than {MAX_REDIRECTS} redirects")

    def _redirected(self, response: _ahttp.Response, path: str) -> str:
        """The path a same-origin redirect points to; one to another origin is the error the
        sync path raises (``_net.refuse_other_origin``: the token would go with it)."""
        base = f"{self.transport.scheme}://{self.transport.host_header}{self.transport.base_path}"
        current = base + path
        target = urljoin(current, response.header("Location") or "")
        refuse_other_origin(current, target, "Vault server", REDIRECT_ADVICE)
        parts = urlsplit(target)
        below = parts.path[len(self.transport.base_path) :] if self.transport.base_path else parts.path
        return below + (f"?{parts.query}" if parts.query else "")

    def _translate(self, error: Exception, what: str) -> BackendError | ConfigError:
        """Transport errors → the messages ``_translate`` gives requests' exceptions."""
        import h11

        source = self.source
        if isinstance(error, asyncio.TimeoutError):
            return BackendError(
                f"{what}: no answer from {source.address()} within {source.timeout:g}s", retryable=True
            )
        if isinstance(error, ssl.SSLError):
            return BackendError(f"{what}: TLS error talking to {source.address()} (check verify / ca_cert)")
        if isinstance(error, (OSError, EOFError, h11.RemoteProtocolError)):
            return BackendError(f"{what}: cannot connect to {source.address()}", retryable=True)
        if isinstance(error, h11.LocalProtocolError):  # a header value h11 will not send (CR/LF)
            return BackendError(f"{what}: InvalidHeader", retryable=True)  # as requests' InvalidHeader
        return source._translated(error, what)


class _Raw:
    """A non-JSON answer, shaped like the ``requests.Response`` hvac would hand back."""

    def __init__(self, response: _ahttp.Response) -> None:
        from requests.structures import CaseInsensitiveDict

        self.status_code = response.status
        self.headers = CaseInsensitiveDict(dict(response.headers))
        self.text = response.body.decode("utf-8", "replace")


def _as_hvac_answer(response: _ahttp.Response, transport: _ahttp.Transport, path: str) -> Any:
    """What hvac's ``JSONAdapter`` returns or raises for ``response`` (see its ``request``)."""
    if response.status >= 400:
        text = response.body.decode("utf-8", "replace")
        body: Any = None
        errors = None
        if response.header("Content-Type") == "application/json":
            try:
                body = json.loads(response.body)
            except ValueError:
                pass
            else:
                errors = body.get("errors") if isinstance(body, dict) else None
        url = f"{transport.scheme}://{transport.host_header}{transport.base_path}{path}"
        import_hvac().utils.raise_for_error(
            "get", url, response.status, text if errors is None else None, errors=errors, text=text, json=body
        )
    if response.status == 200:
        try:
            return json.loads(response.body)
        except ValueError:
            pass
    return _Raw(response)
