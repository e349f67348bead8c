"""Which event an operator page is about: the one named by ``?event=`` (one of the viewer's, else
a 404), or, with none named, the viewer's current event (None while there is none)."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from chronotrack.storage.database import Database
from web import queries, results_queries
from web.errors import NotFound
from web.params import int_param
from web.queries import Event, Scope

MAX_EVENT_ID = 2**62  # as web.operator_pages.MAX_ID: any larger id is a 400, never a database error


async def chosen_event(request: IRequest, database: Database, scope: Scope) -> Event | None:
    event_id = int_param(request, "event", None, 1, MAX_EVENT_ID)
    if event_id is None:
        return await results_queries.current_event(database, scope)
    event = await queries.event_in_scope(database, scope, event_id)
    if event is None:
        raise NotFound("no such event")
    return event
