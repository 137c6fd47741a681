"""Client and server classes for the test service ``cluetest.chat.Chat``, for any grpcio version.

Written by hand in the shape ``grpcio-tools`` generates, without its pin to the generator's
grpcio version: registered methods are used where the installed grpcio has them (as code
generated for that version does), generic handlers otherwise, so the tests run against
every grpcio the package's metadata allows (``nox -s lowest``).
"""

# ruff: noqa: N802 - gRPC's generated naming
from __future__ import annotations

import inspect
from typing import Any

import grpc

from chatpb import chat_pb2 as _pb2

_SERVICE = "cluetest.chat.Chat"
_REGISTERED = "_registered_method" in inspect.signature(grpc.Channel.unary_unary).parameters
_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}
# name: (request streams, response streams, request type, reply type)
_METHODS: dict[str, tuple[bool, bool, Any, Any]] = {
    "Say": (False, False, _pb2.Note, _pb2.Note),
    "Upload": (True, False, _pb2.Note, _pb2.Notes),
    "Subscribe": (False, True, _pb2.Note, _pb2.Note),
    "Talk": (True, True, _pb2.Note, _pb2.Note),
}


class ChatStub:
    """The client stub: one multi-callable attribute per method."""

    def __init__(self, channel: Any) -> None:
        extra = {"_registered_method": True} if _REGISTERED else {}
        for name, (req_stream, resp_stream, request, reply) in _METHODS.items():
            factory = getattr(channel, _KINDS[(req_stream, resp_stream)][0])
            call = factory(
                f"/{_SERVICE}/{name}",
                request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString,
                **extra,
            )
            setattr(self, name, call)


class ChatServicer:
    """The servicer base: every method answers UNIMPLEMENTED until overridden."""

    def Say(self, request: Any, context: Any) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Upload(self, request_iterator: Any, context: Any) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Subscribe(self, request: Any, context: Any) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Talk(self, request_iterator: Any, context: Any) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")


def add_ChatServicer_to_server(servicer: Any, server: Any) -> None:
    """Register ``servicer``'s methods on a sync or aio server."""
    handlers = {
        name: _KINDS[(req_stream, resp_stream)][1](
            getattr(servicer, name),
            request_deserializer=request.FromString,
            response_serializer=reply.SerializeToString,
        )
        for name, (req_stream, resp_stream, request, reply) in _METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    if hasattr(server, "add_registered_method_handlers"):
        server.add_registered_method_handlers(_SERVICE, handlers)
