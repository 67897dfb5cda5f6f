"""Who is asking, for the plugin's code that runs before Datasette's views (its ASGI
wrapper): found, and their permissions checked, as Datasette's router and views do."""

from __future__ import annotations

from typing import Any


async def actor_for(datasette: Any, scope: dict[str, Any]) -> Any:
    """The actor of the request ``scope``, from Datasette's ``actor_from_request`` hooks
    (the signed ``ds_actor`` cookie, datasette-auth-passwords), as the router finds it."""
    from datasette.plugins import pm
    from datasette.utils import await_me_maybe
    from datasette.utils.asgi import Request

    request = Request(scope, None)
    for candidate in pm.hook.actor_from_request(datasette=datasette, request=request):
        actor = await await_me_maybe(candidate)
        if actor:
            return actor
    return scope.get("actor") or None


async def can_see(datasette: Any, scope: dict[str, Any], permissions: list[Any]) -> bool:
    """Whether the visitor of ``scope`` passes ``permissions`` (Datasette's
    ``check_visibility`` list, most specific first), without running any SQL."""
    actor = await actor_for(datasette, scope)
    visible, _ = await datasette.check_visibility(actor, permissions=permissions)
    return bool(visible)
