"""Local stand-ins for the outside world (registration platforms, an event website), on 127.0.0.1."""
